// Command ocm is one multi-call binary holding the Open Cluster Management components that the
// SPE's federation runs as host processes (no images, no operator deployments):
//
//	ocm registration-controller ...  hub: ManagedCluster registration (CSR approval, leases)
//	ocm work-manager ...             hub: ManifestWork replica sets, work status aggregation
//	ocm placement-controller ...     hub: Placement scheduling
//	ocm klusterlet-agent ...         node: the klusterlet's registration and work agents in one
//	                                 process ("singleton" mode); it only ever dials the hub
//
// It dispatches on its first argument, or on its argv[0] basename when linked under one of
// those names. Each subcommand is upstream's own cobra command (open-cluster-management.io/ocm
// pkg/cmd), unchanged.
package main

import (
	goflag "flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"

	ocmfeature "open-cluster-management.io/api/feature"
	"open-cluster-management.io/ocm/pkg/cmd/hub"
	"open-cluster-management.io/ocm/pkg/cmd/spoke"
	"open-cluster-management.io/ocm/pkg/features"
)

// hubGates are the feature gates upstream's cmd/registration and cmd/work mains register for
// their hub commands (the klusterlet agent's command registers its own).
var hubGates = map[string]map[featuregate.Feature]featuregate.FeatureSpec{
	"registration-controller": ocmfeature.DefaultHubRegistrationFeatureGates,
	"work-manager":            ocmfeature.DefaultHubWorkFeatureGates,
}

func commands() map[string]func() *cobra.Command {
	return map[string]func() *cobra.Command{
		"registration-controller": hub.NewRegistrationController,
		"work-manager":            hub.NewWorkController,
		"placement-controller":    hub.NewPlacementController,
		"klusterlet-agent":        spoke.NewKlusterletAgentCmd,
	}
}

func main() {
	pflag.CommandLine.SetNormalizeFunc(utilflag.WordSepNormalizeFunc)
	pflag.CommandLine.AddGoFlagSet(goflag.CommandLine)
	logs.AddFlags(pflag.CommandLine)
	logs.InitLogs()
	defer logs.FlushLogs()

	args := os.Args[1:]
	name := filepath.Base(os.Args[0])
	if _, ok := commands()[name]; !ok {
		if len(args) == 0 {
			usage()
		}
		name, args = args[0], args[1:]
	}
	newCmd, ok := commands()[name]
	if !ok {
		usage()
	}
	if gates, ok := hubGates[name]; ok {
		utilruntime.Must(features.HubMutableFeatureGate.Add(gates))
	}
	cmd := newCmd()
	if _, ok := hubGates[name]; ok {
		features.HubMutableFeatureGate.AddFlag(cmd.Flags())
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ocm registration-controller|work-manager|placement-controller|klusterlet-agent [flags]")
	os.Exit(2)
}
