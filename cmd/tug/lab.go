package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/tools"
)

type labFlags struct {
	name      string
	stateRoot string
	repo      string
}

func (f *labFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.name, "name", "default", "lab name; labs with different names run side by side")
	cmd.PersistentFlags().StringVar(&f.stateRoot, "state-dir", "", "folder holding one subfolder per lab (default $XDG_STATE_HOME/tug/lab or ~/.local/state/tug/lab)")
	cmd.PersistentFlags().StringVar(&f.repo, "repo", "", "the GitOps repository to deploy, a clone of tug (default: the repository around the working directory)")
}

func (f *labFlags) dir() (string, error) {
	d, err := lab.StateDir(f.stateRoot, f.name)
	if err != nil {
		return "", usageError{err}
	}
	return d, nil
}

func newLabCmd() *cobra.Command {
	f := &labFlags{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a local Kubernetes control plane, Argo CD and a git forge as processes",
		Long: `The lab runs a real kube-apiserver (with kine/SQLite storage, the controller
manager, the scheduler and kwok fake nodes), real Argo CD v3.2.11 components
and a real Gitea forge, all as local processes on 127.0.0.1 — no container
engine. The programs are built once from their pinned Go modules (lab/tools)
and cached; later starts take seconds.

"tug lab up" ends with the product's Applications Synced and Healthy, and
makes the "tug-lab" kubectl context current.`,
		Example: `  tug lab up                 # build (first time), start, deploy the example apps
  kubectl get applications -n argocd
  tug status
  tug lab status -o json
  tug lab logs argocd-application-controller
  eval "$(tug lab env)"      # KUBECONFIG, ARGOCD_SERVER, forge URL
  tug lab down               # stop everything (state is kept; --delete removes it)`,
	}
	f.register(cmd)
	cmd.AddCommand(newLabUpCmd(f), newLabSuperviseCmd(f), newLabDownCmd(f), newLabStatusCmd(f), newLabLogsCmd(f), newLabKubeconfigCmd(f), newLabEnvCmd(f))
	return cmd
}

func newLabUpCmd(f *labFlags) *cobra.Command {
	var noKubeconfig bool
	var nodeKind string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the lab (building its programs on first use) and deploy the example apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := f.dir(); err != nil {
				return err
			}
			repo, err := repoRoot(f.repo)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			kind, reason, err := lab.ChooseNode(nodeKind)
			if err != nil {
				return usageError{err}
			}
			printNode(cmd.ErrOrStderr(), kind, reason)
			st, err := lab.Launch(cmd.Context(), lab.LaunchOptions{
				Node: kind, NodeReason: reason,
				Name: f.name, StateRoot: f.stateRoot, RepoRoot: repo,
				SuperviseArgs:      []string{self, "lab", "supervise"},
				NoKubeconfigUpdate: noKubeconfig, Timeout: timeout, Progress: cmd.ErrOrStderr(),
			})
			switch {
			case errors.Is(err, lab.ErrAlreadyRunning):
				fmt.Fprintf(cmd.ErrOrStderr(), "lab %q is already running (supervisor pid %d)\n", f.name, st.Supervisor)
			case err != nil:
				return err
			default:
				printTimings(cmd.ErrOrStderr(), st)
			}
			printNextSteps(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noKubeconfig, "no-kubeconfig-update", false, "do not add the lab's context to your kubeconfig")
	cmd.Flags().StringVar(&nodeKind, "node", lab.NodeFake, "the lab's node: real (kubelet, containerd and runc run the product's pods in containers; Linux, root and the runtime's packages, else fake with the reason) or fake (kwok marks pods Running and Ready; nothing runs)")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Minute, "give up after this long (the first run builds Kubernetes, Argo CD and Gitea from source: ~20 min on 2 cores)")
	return cmd
}

func newLabSuperviseCmd(f *labFlags) *cobra.Command {
	var noKubeconfig bool
	var nodeKind, nodeReason string
	cmd := &cobra.Command{
		Use:    "supervise",
		Short:  "Run the lab in the foreground (what 'lab up' starts in the background)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := repoRoot(f.repo)
			if err != nil {
				return err
			}
			mods, err := tools.FindModulesDir(repo)
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if os.Getenv("TUG_DEBUG") != "" {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			stopProfile, err := startCPUProfile(os.Getenv("TUG_CPUPROFILE"))
			if err != nil {
				return err
			}
			l, err := lab.Start(ctx, lab.Options{
				Name: f.name, StateRoot: f.stateRoot, RepoRoot: repo, Log: log,
				Tools:                &tools.Builder{ModulesDir: mods, Log: log},
				UpdateUserKubeconfig: !noKubeconfig,
				Node:                 nodeKind, NodeReason: nodeReason,
			})
			stopProfile()
			if err != nil {
				return err
			}
			log.Info("lab ready; supervising until 'tug lab down'")
			l.Supervise(ctx)
			log.Info("stopping lab")
			return l.Stop(context.Background())
		},
	}
	cmd.Flags().BoolVar(&noKubeconfig, "no-kubeconfig-update", false, "do not add the lab's context to your kubeconfig")
	cmd.Flags().StringVar(&nodeKind, "node", lab.NodeFake, "real or fake (resolved by 'lab up')")
	cmd.Flags().StringVar(&nodeReason, "node-reason", "", "why the node is fake")
	return cmd
}

// printNode says which node the lab runs, and for a fake one why.
func printNode(w io.Writer, kind, reason string) {
	if kind == lab.NodeReal {
		fmt.Fprintln(w, "Node: real (kubelet + containerd + runc; the product's pods run in containers)")
		return
	}
	fmt.Fprintf(w, "Node: fake (kwok: pods are marked Running, nothing runs): %s\n", reason)
}

func newLabDownCmd(f *labFlags) *cobra.Command {
	var deleteState bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop every lab process (keeping the state unless --delete)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			if err := lab.Down(cmd.Context(), dir, 30*time.Second); err != nil {
				return err
			}
			_ = lab.RemoveUserContext(f.name)
			if deleteState {
				if err := os.RemoveAll(dir); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "lab %q stopped and its state deleted\n", f.name)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lab %q stopped (state kept in %s; 'tug lab up' resumes it)\n", f.name, dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&deleteState, "delete", false, "also delete the lab's state (database, PKI, forge)")
	return cmd
}

func newLabStatusCmd(f *labFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each lab component with its pid, ports and health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "", "table", "json", "yaml":
			default:
				return usageError{fmt.Errorf("-o %s: use table, json or yaml", output)}
			}
			dir, err := f.dir()
			if err != nil {
				return err
			}
			st, err := lab.ProbeStatus(cmd.Context(), dir)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			case "yaml":
				data, err := yaml.Marshal(st)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "lab %s: %s (supervisor pid %d, redis: %s)\n", st.Name, st.Phase, st.Supervisor, st.Redis)
			if st.Node != "" {
				printNode(w, st.Node, st.NodeReason)
			}
			fmt.Fprintln(w, "COMPONENT\tPID\tPORTS\tRESTARTS\tHEALTHY\tERROR")
			for _, c := range st.Components {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%v\t%s\n", c.Name, c.PID, portsText(c.Ports), c.Restarts, c.Healthy, c.Error)
			}
			w.Flush()
			for _, c := range st.Components {
				if !c.Healthy {
					return errFindings
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func newLabLogsCmd(f *labFlags) *cobra.Command {
	var lines int
	cmd := &cobra.Command{
		Use:   "logs COMPONENT",
		Short: "Print a component's log (see 'tug lab status' for the names; 'supervisor' is the lab's own)",
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			dir, err := f.dir()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			entries, _ := os.ReadDir(filepath.Join(dir, "logs"))
			var names []string
			for _, e := range entries {
				names = append(names, strings.TrimSuffix(e.Name(), ".log"))
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			name := filepath.Base(args[0])
			path := filepath.Join(dir, "logs", name+".log")
			if name == "gitea" {
				path = filepath.Join(dir, "gitea", "log", "gitea.log")
			}
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				return usageError{fmt.Errorf("no log for %q in %s/logs: see 'tug lab status' for component names", name, dir)}
			}
			if err != nil {
				return err
			}
			all := strings.SplitAfter(string(data), "\n")
			if lines > 0 && len(all) > lines {
				all = all[len(all)-lines:]
			}
			_, err = io.WriteString(cmd.OutOrStdout(), strings.Join(all, ""))
			return err
		},
	}
	cmd.Flags().IntVarP(&lines, "tail", "n", 200, "number of lines from the end (0 for all)")
	return cmd
}

func newLabKubeconfigCmd(f *labFlags) *cobra.Command {
	var pathOnly bool
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the lab administrator's kubeconfig (or its path with --path)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			path := filepath.Join(dir, "kubeconfig", "admin.yaml")
			if pathOnly {
				fmt.Fprintln(cmd.OutOrStdout(), path)
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("no kubeconfig in %s: start the lab with 'tug lab up'", dir)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().BoolVar(&pathOnly, "path", false, "print the file's path instead of its content")
	return cmd
}

func newLabEnvCmd(f *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "Print shell exports for the lab (no secret is printed)",
		Example: `  eval "$(tug lab env)"
  argocd login "$ARGOCD_SERVER" --username operator --grpc-web \
    --password "$(kubectl -n argocd get secret tug-credentials -o jsonpath='{.data.operator-password}' | base64 -d)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			st, err := lab.ReadStatus(dir)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "export KUBECONFIG=%q\n", st.Kubeconfig)
			if a := st.Endpoints["argocd"]; a != "" {
				fmt.Fprintf(w, "export ARGOCD_SERVER=%q\n", strings.TrimPrefix(a, "https://"))
			}
			fmt.Fprintf(w, "export SSL_CERT_FILE=%q\n", filepath.Join(dir, "pki", "ca.crt"))
			if u := st.Endpoints["forge"]; u != "" {
				fmt.Fprintf(w, "export TUG_FORGE_URL=%q\n", u)
			}
			fmt.Fprintf(w, "# Credentials are not printed. Argo CD's operator password and deployer token:\n")
			fmt.Fprintf(w, "#   kubectl -n argocd get secret tug-credentials -o jsonpath='{.data.operator-password}' | base64 -d\n")
			fmt.Fprintf(w, "# The forge's admin token is in %s (mode 0600).\n", filepath.Join(dir, "gitea", "admin-token"))
			return nil
		},
	}
}

func printNextSteps(w io.Writer, st *lab.Status) {
	fmt.Fprintf(w, `Lab %q is ready.
  Kubernetes API  %s   (kubectl context %s)
  Argo CD API     %s   (login: operator; admin is disabled)
  Git forge       %s
  Repository      %s
%[8]s
Try:
  kubectl get applications -n argocd
  %[7]s status
  %[7]s verify drift backend-dev
  eval "$(%[7]s lab env)"      # exports KUBECONFIG, ARGOCD_SERVER, TUG_FORGE_URL; prints no secret
  %[7]s lab down
`, st.Name, st.Endpoints["kubernetes"], lab.ContextName(st.Name), st.Endpoints["argocd"], st.Endpoints["forge"], st.Endpoints["repository"], invokedAs(), frontendLines(st))
}

func printTimings(w io.Writer, st *lab.Status) {
	var parts []string
	total := 0.0
	for _, t := range st.Timings {
		parts = append(parts, fmt.Sprintf("%s %.1fs", t.Phase, t.Seconds))
		total += t.Seconds
	}
	fmt.Fprintf(w, "Phases: %s (total %.1fs)\n", strings.Join(parts, ", "), total)
}

func portsText(p map[string]int) string {
	var parts []string
	for k, v := range p {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	return strings.Join(parts, ",")
}

// invokedAs is how the user ran tug ("tug", "./bin/tug"), for hints they can paste.
func invokedAs() string {
	if len(os.Args) > 0 && strings.Contains(os.Args[0], "/") {
		return os.Args[0]
	}
	return "tug"
}

// startCPUProfile writes a CPU profile of the start-up to path, for
// working on the lab's speed (TUG_CPUPROFILE=path); "" profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// frontendLines lists the shop's frontends a real node serves, one per
// environment.
func frontendLines(st *lab.Status) string {
	var names []string
	for k := range st.Endpoints {
		if strings.HasPrefix(k, "frontend/") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "  Shop %-11s %s   (the frontend, in a real container)\n", strings.TrimPrefix(k, "frontend/"), st.Endpoints[k])
	}
	return b.String()
}
