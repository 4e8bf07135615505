//go:build !windows

package main

import (
	"context"
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
	"time"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/output"
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
	l, err := f.layout()
	return l.Dir, err
}

func (f *labFlags) layout() (lab.Layout, error) {
	l, err := lab.LayoutOf(f.stateRoot, f.name)
	if err != nil {
		return l, usageError{err}
	}
	return l, nil
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
	var noKubeconfig, background bool
	var nodeKind string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the lab (building its programs on first use) and deploy the example apps",
		Long: `Start the lab's supervisor in the background and follow it until the lab is
ready. The lab outlives this command; 'tug lab down' stops it.

Ctrl-C while the lab is building or starting stops everything this command
started, unless --background is given: then the lab keeps starting and the
command says how to stop it. Two 'tug lab up' at once on one lab start one
supervisor; the second follows it.`,
		Args: cobra.NoArgs,
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
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := lab.Launch(ctx, lab.LaunchOptions{
				Node: kind, NodeReason: reason,
				Name: f.name, StateRoot: f.stateRoot, RepoRoot: repo,
				SuperviseArgs:      []string{self, "lab", "supervise"},
				NoKubeconfigUpdate: noKubeconfig, Timeout: timeout, Progress: cmd.ErrOrStderr(),
			})
			stop() // a second Ctrl-C kills this command at once
			var intr *lab.InterruptedError
			switch {
			case errors.As(err, &intr):
				return interrupted(cmd, f, intr, background)
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
	cmd.Flags().StringVar(&nodeKind, "node", lab.NodeAuto, "the lab's node: real (kubelet, containerd and runc run the product's pods in containers; needs Linux, root, nftables, libc6-dev and libseccomp-dev; containerd, runc and the CNI plugins are built from Go modules), fake (kwok marks pods Running and Ready; nothing runs), or auto: real where the host allows it, else fake with the reason")
	cmd.Flags().BoolVar(&background, "background", false, "on Ctrl-C, leave the lab starting in the background (default: stop it)")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Minute, "give up after this long (the first run builds Kubernetes, Argo CD and Gitea from source: ~20 min on 2 cores)")
	return cmd
}

// interrupted handles Ctrl-C on 'lab up': it stops the lab it started, or
// says how to stop one it leaves running.
func interrupted(cmd *cobra.Command, f *labFlags, intr *lab.InterruptedError, background bool) error {
	w := cmd.ErrOrStderr()
	if background || !intr.Started {
		fmt.Fprintf(w, "Interrupted; lab %q keeps %s in the background (supervisor pid %d).\n  %s lab status --name %s    # follow it\n  %s lab down --name %s      # stop it\n",
			f.name, intr.Phase, intr.Supervisor, invokedAs(), f.name, invokedAs(), f.name)
		return errInterrupted
	}
	fmt.Fprintf(w, "Interrupted while the lab was %s; stopping everything it started…\n", intr.Phase)
	dir, err := f.dir()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
	defer cancel()
	res, err := lab.Down(ctx, dir)
	if err != nil {
		return fmt.Errorf("stopping the interrupted lab: %w (try '%s lab down --name %s')", err, invokedAs(), f.name)
	}
	printDown(w, f.name, res)
	return errInterrupted
}

// errInterrupted ends a command the user interrupted (exit 1, the message
// printed already).
var errInterrupted = fmt.Errorf("interrupted: %w", errFindings)

// downTimeout bounds 'lab down': the supervisor's own stop, then killing
// what it left.
const downTimeout = 45 * time.Second

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
			stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return l.Stop(stopCtx)
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
			ctx, cancel := context.WithTimeout(cmd.Context(), downTimeout)
			defer cancel()
			res, err := lab.Down(ctx, dir)
			if err != nil {
				return err
			}
			printDown(cmd.ErrOrStderr(), f.name, res)
			_ = lab.RemoveUserContext(dir, f.name)
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
	var format output.Format
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each lab component with its pid, ports, restarts, health and memory",
		Long: `Show the lab's phase and each component: pid, ports, how often the
supervisor restarted it, whether it is healthy, and its memory (resident
set size of its process group), with the supervisor's and the total.

Exit status 1 when a component is unhealthy.`,
		Example: `  tug lab status
  tug lab status -o json | jq '.components[] | {name, pid, restarts}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.dir()
			if err != nil {
				return err
			}
			st, err := lab.ProbeStatus(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if err := format.Write(cmd.OutOrStdout(), st, func(w io.Writer) error { return printLabStatus(w, st) }); err != nil {
				return err
			}
			for _, c := range st.Components {
				if !c.Healthy {
					return errFindings
				}
			}
			return nil
		},
	}
	bindOutputFlag(cmd, &format)
	return cmd
}

// printLabStatus is lab status's table.
func printLabStatus(out io.Writer, st *lab.Status) error {
	w := output.NewTable(out)
	fmt.Fprintf(w, "lab %s: %s (supervisor pid %d, redis: %s)\n", st.Name, st.Phase, st.Supervisor, st.Redis)
	if st.Node != "" {
		printNode(w, st.Node, st.NodeReason)
	}
	if st.Build != nil {
		fmt.Fprintf(w, "building %s (pid %d)\n", st.Build.Tool, st.Build.PID)
	}
	fmt.Fprintln(w, "COMPONENT\tPID\tPORTS\tRESTARTS\tHEALTHY\tRSS\tERROR")
	for _, c := range st.Components {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%v\t%s\t%s\n", c.Name, c.PID, portsText(c.Ports), c.Restarts, c.Healthy, mib(c.RSS), c.Error)
	}
	fmt.Fprintf(w, "supervisor\t%d\t\t\t\t%s\t\n", st.Supervisor, mib(st.RSS))
	fmt.Fprintf(w, "total\t\t\t\t\t%s\t\n", mib(st.TotalRSS))
	return w.Flush()
}

func newLabLogsCmd(f *labFlags) *cobra.Command {
	var lines int
	cmd := &cobra.Command{
		Use:   "logs COMPONENT",
		Short: "Print a component's log (see 'tug lab status' for the names; 'supervisor' is the lab's own)",
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			layout, err := f.layout()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			entries, _ := os.ReadDir(layout.Logs())
			var names []string
			for _, e := range entries {
				names = append(names, strings.TrimSuffix(e.Name(), ".log"))
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			layout, err := f.layout()
			if err != nil {
				return err
			}
			dir := layout.Dir
			name := filepath.Base(args[0])
			path := layout.Log(name)
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
			layout, err := f.layout()
			if err != nil {
				return err
			}
			dir, path := layout.Dir, layout.AdminKubeconfig()
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
			layout, err := f.layout()
			if err != nil {
				return err
			}
			st, err := lab.ReadStatus(layout.Dir)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "export KUBECONFIG=%q\n", st.Kubeconfig)
			if a := st.Endpoints["argocd"]; a != "" {
				fmt.Fprintf(w, "export ARGOCD_SERVER=%q\n", strings.TrimPrefix(a, "https://"))
			}
			fmt.Fprintf(w, "export SSL_CERT_FILE=%q\n", layout.CACert())
			if u := st.Endpoints["argocd-ui"]; u != "" {
				fmt.Fprintf(w, "export TUG_ARGOCD_UI_URL=%q\n", u)
			}
			if u := st.Endpoints["forge"]; u != "" {
				fmt.Fprintf(w, "export TUG_FORGE_URL=%q\n", u)
			}
			if r := st.Endpoints["registry"]; r != "" {
				// The forge is the lab's container registry; its token is
				// read from the token file by the shell, never printed.
				fmt.Fprintf(w, "export TUG_REGISTRY=%q\n", r)
				fmt.Fprintf(w, "export TUG_REGISTRY_USER=%q\n", giteaserver.DefaultAdminUser)
				fmt.Fprintf(w, "export TUG_REGISTRY_TOKEN=\"$(cat %s)\"\n", shellQuote(layout.ForgeTokenFile()))
			}
			fmt.Fprintf(w, "# Credentials are not printed. Argo CD's operator password and deployer token:\n")
			fmt.Fprintf(w, "#   kubectl -n argocd get secret tug-credentials -o jsonpath='{.data.operator-password}' | base64 -d\n")
			// The token file's path is no secret; the token stays in it.
			fmt.Fprintf(w, "export %s=%q\n", forge.TokenFileEnv, layout.ForgeTokenFile())
			return nil
		},
	}
}

func printNextSteps(w io.Writer, st *lab.Status) {
	ui := "not served (see below)"
	if u := st.Endpoints["argocd-ui"]; u != "" {
		ui = u + "   (its certificate is from the lab CA: trust pki/ca.crt, see docs/lab.md)"
	}
	fmt.Fprintf(w, `Lab %q is ready.
  Kubernetes API  %s   (kubectl context %s)
  Argo CD API     %s   (login: operator; admin is disabled)
  Argo CD web UI  %[8]s
  Git forge       %[5]s
  Repository      %[6]s
  Image registry  %[10]s   (the forge; the node pulls ghcr.io/tug-gitops/* from it)
%[9]s
Try:
  kubectl get applications -n argocd
  %[7]s status
  %[7]s verify drift backend-dev
  eval "$(%[7]s lab env)"      # exports KUBECONFIG, ARGOCD_SERVER, TUG_ARGOCD_UI_URL, TUG_FORGE_URL, TUG_FORGE_TOKEN_FILE, TUG_REGISTRY(_USER,_TOKEN); prints no secret
  %[7]s lab down
`, st.Name, st.Endpoints["kubernetes"], lab.ContextName(st.Name), st.Endpoints["argocd"], st.Endpoints["forge"], st.Endpoints["repository"], invokedAs(), ui, frontendLines(st), st.Endpoints["registry"])
	for _, n := range st.Notices {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}

// printDown says what 'lab down' found and stopped.
func printDown(w io.Writer, name string, res *lab.DownResult) {
	switch {
	case res.Supervisor != 0 && res.Killed:
		fmt.Fprintf(w, "lab %q was %s: its supervisor (pid %d) did not stop in time and was killed\n", name, res.Was, res.Supervisor)
	case res.Supervisor != 0:
		fmt.Fprintf(w, "lab %q was %s: stopped its supervisor (pid %d) and everything it ran\n", name, res.Was, res.Supervisor)
	case res.Was == "half-dead":
		fmt.Fprintf(w, "lab %q was half-dead (no supervisor): stopped what it left running\n", name)
	default:
		fmt.Fprintf(w, "lab %q was not running\n", name)
	}
	for _, l := range res.Leftovers {
		fmt.Fprintf(w, "  stopped %s\n", l)
	}
}

// mib formats a byte count for tables.
func mib(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// printTimings lists lab up's steps as each was done (they run side by
// side where they can), with how long each ran.
func printTimings(w io.Writer, st *lab.Status) {
	var parts []string
	total := 0.0
	for _, t := range st.Timings {
		parts = append(parts, fmt.Sprintf("%s %.1fs", t.Phase, t.Seconds))
		total = max(total, t.At)
	}
	fmt.Fprintf(w, "Steps (as done): %s; ready after %.1fs\n", strings.Join(parts, ", "), total)
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

// shellQuote quotes s for a POSIX shell (single quotes; a ' inside is
// closed, escaped and reopened).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
