import os, shutil, textwrap
BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")
shutil.rmtree(BASE, ignore_errors=True)
REPO = "https://example.com/shop.git"
TUG = f"repoURL: {REPO}\n"
CHART = {
 "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
 "charts/web/values.yaml": "replicas: 1\nextra: {}\n",
 "charts/web/values-dev.yaml": "replicas: 1\n",
 "charts/web/templates/cm.yaml": textwrap.dedent("""\
   apiVersion: v1
   kind: ConfigMap
   metadata:
     name: {{ .Release.Name }}
   data:
     replicas: "{{ .Values.replicas }}"
   {{- with .Values.extra }}
   {{ toYaml . }}
   {{- end }}
   """),
}
PROJECT = textwrap.dedent(f"""\
  apiVersion: argoproj.io/v1alpha1
  kind: AppProject
  metadata:
    name: shop
    namespace: argocd
  spec:
    sourceRepos:
      - {REPO}
    destinations:
      - server: https://kubernetes.default.svc
        namespace: shop-*
    clusterResourceWhitelist:
      - group: ""
        kind: Namespace
  """)
def app(name="web-dev", server="https://kubernetes.default.svc", dest_extra="", ns="shop-dev", project="shop",
        path="charts/web", values="values-dev.yaml", repo=REPO, extra_spec="", sync="", helm_extra=""):
    d = f"    server: {server}\n" if server is not None else ""
    return textwrap.dedent(f"""\
  apiVersion: argoproj.io/v1alpha1
  kind: Application
  metadata:
    name: {name}
    namespace: argocd
  spec:
    project: {project}
    source:
      repoURL: {repo}
      path: {path}
      helm:
        releaseName: web
        valueFiles:
          - {values}
  """) + helm_extra + "  destination:\n" + d + dest_extra + f"    namespace: {ns}\n" + extra_spec + sync
# Lines in app(): 1 apiVersion,2 kind,3 metadata,4 name,5 ns,6 spec,7 project,8 source,9 repoURL,10 path,11 helm,12 releaseName,13 valueFiles,14 - values,15 destination,16 server,17 namespace
cases = {}
def case(name, files, expect):
    cases[name] = (files, expect)
def std(**kw):
    return {"tug.yaml": TUG, **CHART, "apps/project.yaml": PROJECT, "apps/app.yaml": app(**kw)}

case("ok", std(), [])
# destination variants
case("dest-port-443", std(server="https://kubernetes.default.svc:443"), ["destination.unknown-server apps/app.yaml:16"])
case("dest-http", std(server="http://kubernetes.default.svc"), ["destination.unknown-server apps/app.yaml:16"])
case("dest-https-no-colon", std(server="https//kubernetes.default.svc"), ["destination.unknown-server apps/app.yaml:16"])
case("dest-path", std(server="https://kubernetes.default.svc/api"), ["destination.unknown-server apps/app.yaml:16"])
case("dest-typo", std(server="https://kubernetes.defualt.svc"), ["destination.unknown-server apps/app.yaml:16"])
case("dest-server-and-name", std(dest_extra="    name: in-cluster\n"), ["destination.server-and-name apps/app.yaml:15"])
case("dest-neither", std(server=None), ["destination.missing apps/app.yaml:15"])
case("dest-unknown-name", std(server=None, dest_extra="    name: incluster\n"), ["destination.unknown-name apps/app.yaml:16"])
f = std(server="https://east.example.com"); f["tug.yaml"] = TUG + "clusters:\n  - name: east\n    server: https://east.example.com/\n"
f["apps/project.yaml"] = PROJECT.replace("server: https://kubernetes.default.svc", "server: '*'")
case("dest-declared-cluster-ok", f, [])
f = std(server="https://west.example.com")
f["apps/cluster.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: west\n  namespace: argocd\n  labels:\n    argocd.argoproj.io/secret-type: cluster\nstringData:\n  name: west\n  server: https://west.example.com\n"
f["apps/project.yaml"] = PROJECT.replace("server: https://kubernetes.default.svc", "server: https://west.example.com")
case("dest-cluster-secret-ok", f, [])
case("dest-trailing-slash-ok", std(server="https://kubernetes.default.svc/"), [])
# project
case("project-missing", std(project="shopp"), ["project.missing apps/app.yaml:7"])
case("project-default-ok", std(project="default"), [])
case("project-destination-denied", std(ns="kube-system"), ["project.destination-denied apps/app.yaml:15"])
f = std(); f["apps/project.yaml"] = PROJECT.replace("namespace: shop-*", "namespace: shop-*\n    - server: https://kubernetes.default.svc\n      namespace: '!shop-dev'")
case("project-destination-negated", f, ["project.destination-denied apps/app.yaml:15"])
f = std(); f["apps/project.yaml"] = PROJECT.replace(f"- {REPO}", "- https://example.com/other.git")
case("project-source-denied", f, ["project.source-denied apps/app.yaml:9"])
f = std(); f["charts/web/templates/ns.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-extra\n"
f["apps/project.yaml"] = PROJECT.replace("  clusterResourceWhitelist:\n    - group: \"\"\n      kind: Namespace\n", "")
case("project-kind-denied-cluster", f, ["project.kind-denied apps/app.yaml:8"])
f = std(); f["apps/project.yaml"] = PROJECT + "  namespaceResourceBlacklist:\n    - group: \"\"\n      kind: ConfigMap\n"
case("project-kind-denied-blacklist", f, ["project.kind-denied apps/app.yaml:8"])
f = std(); f["charts/web/templates/other.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  namespace: kube-system\n"
case("project-resource-namespace-denied", f, ["project.destination-denied apps/app.yaml:8"])
# source
case("source-path-missing", std(path="charts/wbe"), ["source.path-missing apps/app.yaml:10"])
case("source-path-escapes", std(path="../outside"), ["source.path-missing apps/app.yaml:10"])
case("source-values-missing", std(values="values-dve.yaml"), ["source.values-missing apps/app.yaml:14"])
f = std(); f["charts/web/templates/bad.yaml"] = "{{ .Values.nope.deeper }}\n"
case("source-render-failed-template", f, ["source.render-failed apps/app.yaml:8"])
f = std(); f["charts/web/values-dev.yaml"] = "replicas: [\n"
case("source-render-failed-values", f, ["parse.yaml charts/web/values-dev.yaml:1", "source.render-failed apps/app.yaml:8"])
case("source-external-info", std(repo="https://example.com/elsewhere.git"), ["project.source-denied apps/app.yaml:9", "source.external apps/app.yaml:9"])
f = std(path="manifests/k"); f["manifests/k/kustomization.yaml"] = "resources:\n  - missing.yaml\n"
f["apps/app.yaml"] = f["apps/app.yaml"].replace("    helm:\n      releaseName: web\n      valueFiles:\n        - values-dev.yaml\n", "")
case("source-kustomize-failed", f, ["source.render-failed apps/app.yaml:8"])
# what needs the network: missing chart dependencies (Helm repository, OCI,
# a helm repo name, file://) and a remote value file, offline
f = std(values="https://raw.example.com/shop/values-dev.yaml")
f["charts/web/Chart.yaml"] = CHART["charts/web/Chart.yaml"] + textwrap.dedent("""\
  dependencies:
    - name: redis
      version: 17.x.x
      repository: https://charts.example.com/bitnami
    - name: common
      version: ^2.0.0
      repository: oci://registry.example.com/charts
    - name: legacy
      version: 1.0.0
      repository: "@stable"
    - name: lib
      version: 0.1.0
      repository: file://../lib
  """)
case("source-remote-dependencies", f, ["source.remote apps/app.yaml:14", "source.remote charts/web/Chart.yaml:5",
     "source.remote charts/web/Chart.yaml:8", "source.remote charts/web/Chart.yaml:11", "source.remote charts/web/Chart.yaml:14"])
# manifest schema
f = std(); f["charts/web/values-dev.yaml"] = "replicas: 1\nextra:\n  immutable: \"yes\"\n"
case("manifest-wrong-type", f, ["manifest.schema apps/app.yaml:8"])
f = std(); f["charts/web/values-dev.yaml"] = "replicas: 1\nextra:\n  dataa: {}\n"
case("manifest-unknown-field", f, ["manifest.schema apps/app.yaml:8"])
f = std(); f["charts/web/templates/d.yaml"] = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n"
case("manifest-unknown-kind", f, ["manifest.unknown-kind apps/app.yaml:8"])
f = std(); f["charts/web/templates/w.yaml"] = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n  colour: red\n"
f["crds/widget.yaml"] = textwrap.dedent("""\
  apiVersion: apiextensions.k8s.io/v1
  kind: CustomResourceDefinition
  metadata:
    name: widgets.example.com
  spec:
    group: example.com
    scope: Namespaced
    names: {kind: Widget, plural: widgets}
    versions:
      - name: v1
        served: true
        storage: true
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                properties:
                  size: {type: integer}
  """)
case("manifest-crd-unknown-field", f, ["manifest.schema apps/app.yaml:8"])
# parse
# files no Application reads are not checked: a root reads apps/
def root_apps():
    return textwrap.dedent("""\
      # The app-of-apps root: Argo CD reads every file in apps/, so a file there
      # that is not YAML fails the root's manifest generation.
      apiVersion: argoproj.io/v1alpha1
      kind: Application
      metadata:
        name: root
        namespace: argocd
      spec:
        project: default
        source:
          repoURL: https://example.com/shop.git
          path: apps
        destination:
          server: https://kubernetes.default.svc
          namespace: argocd
      """)
case("parse-yaml-syntax", {**std(), "root.yaml": root_apps(), "apps/broken.yaml": "apiVersion: v1\nkind: [\n"}, ["parse.yaml apps/broken.yaml:2", "source.render-failed root.yaml:10"])
case("parse-schema-selfheal", std(sync="  syncPolicy:\n    automated:\n      selfheal: true\n"), ["parse.schema apps/app.yaml:20"])
case("parse-schema-wrong-type", std(sync="  syncPolicy:\n    automated:\n      prune: yes-please\n"), ["parse.schema apps/app.yaml:20"])
f = std(); f["apps/app.yaml"] = f["apps/app.yaml"].replace("  project: shop\n", "")
case("parse-schema-missing-project", f, ["parse.schema apps/app.yaml:6"])
case("parse-schema-apiversion", {**std(), "apps/v2.yaml": "apiVersion: argoproj.io/v2\nkind: Application\nmetadata:\n  name: x\n"}, ["parse.schema apps/v2.yaml:1"])
case("parse-duplicate-key", {**std(), "apps/dup.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: p\n  name: q\n"}, ["parse.yaml apps/dup.yaml:5"])
bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
for prev, cur in zip("abcdefgh", "bcdefghi"):
    bomb += f"{cur}: &{cur} [" + ",".join([f"*{prev}"]*9) + "]\n"
bomb = "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: bomb\n" + "spec:\n  description: x\n" + "x:\n" + "".join("  " + l + "\n" for l in bomb.splitlines())
case("parse-yaml-bomb", {**std(), "apps/bomb.yaml": bomb}, ["parse.yaml apps/bomb.yaml:1"])
case("parse-binary", {**std(), "root.yaml": root_apps(), "apps/blob.yaml": b"\x00\x01\x02binary\xff"}, ["parse.file apps/blob.yaml:1", "source.render-failed root.yaml:10"])
case("config-invalid", {**std(), "tug.yaml": TUG + "clusterz: []\n"}, ["config.invalid tug.yaml:2"])
# across apps
f = std(); f["apps/app2.yaml"] = app(name="web-dev", ns="shop-prod")
case("apps-duplicate-name", f, ["apps.duplicate-name apps/app2.yaml:4"])
f = std(); f["apps/app2.yaml"] = app(name="web-dev2")
case("apps-shared-resource", f, ["apps.shared-resource apps/app2.yaml:15"])
# app of apps: root renders apps/, which holds only child.yaml; apps/extra/other.yaml is not rendered (no recurse)
f = std(); f.pop("apps/app.yaml")
f["root.yaml"] = app(name="root", path="apps", values="x").replace("    helm:\n      releaseName: web\n      valueFiles:\n        - x\n", "").replace("namespace: shop-dev", "namespace: argocd")
f["apps/project.yaml"] = PROJECT.replace("namespace: shop-*", "namespace: shop-*\n    - server: https://kubernetes.default.svc\n      namespace: argocd").replace("  clusterResourceWhitelist:", "  namespaceResourceWhitelist:\n    - group: argoproj.io\n      kind: '*'\n    - group: ''\n      kind: ConfigMap\n  clusterResourceWhitelist:")
f["apps/child.yaml"] = app()
f["apps/nested/other.yaml"] = app(name="orphan", ns="shop-prod")
case("apps-unreachable", f, ["apps.unreachable apps/nested/other.yaml:4"])
# appset
f = std(); f.pop("apps/app.yaml")
f["apps/set.yaml"] = textwrap.dedent(f"""\
  apiVersion: argoproj.io/v1alpha1
  kind: ApplicationSet
  metadata:
    name: web
    namespace: argocd
  spec:
    generators:
      - list:
          elements:
            - env: dev
            - env: prod
    template:
      metadata:
        name: 'web-{{{{env}}}}'
      spec:
        project: shop
        source:
          repoURL: {REPO}
          path: charts/web
          helm:
            valueFiles: ['values-{{{{env}}}}.yaml']
        destination:
          server: https://kubernetes.default.svc
          namespace: 'shop-{{{{env}}}}'
  """)
case("appset-values-missing", f, ["source.values-missing apps/set.yaml:21"])
f2 = dict(f); f2["apps/set.yaml"] = f["apps/set.yaml"].replace("- list:", "- git:\n        repoURL: x\n        revision: HEAD\n        directories: [{path: '*'}]\n    - list:")
f2["charts/web/values-prod.yaml"] = "replicas: 2\n"
case("appset-generator-unsupported", f2, ["appset.generator-unsupported apps/set.yaml:8"])

for name, (files, expect) in cases.items():
    for rel, content in files.items():
        p = os.path.join(BASE, name, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(p, mode) as fh: fh.write(content)
    with open(os.path.join(BASE, name, "EXPECT"), "w") as fh:
        fh.write("".join(e + "\n" for e in expect))
print(len(cases))
