// Command karpenter runs Karpenter's core controllers with its kwok cloud provider, for the
// pytest-aiconformance lab: NodeClaims become kwok-simulated nodes, so node autoscaling is real
// (provisioning, consolidation) while no machine exists.
//
// It is the lab's own entry point rather than `go tool` on sigs.k8s.io/karpenter/kwok, whose
// binary would be named "kwok" next to the lab's kwok.
package main

import (
	"sigs.k8s.io/controller-runtime/pkg/log"

	kwok "sigs.k8s.io/karpenter/kwok/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/cloudprovider/overlay"
	"sigs.k8s.io/karpenter/pkg/controllers"
	"sigs.k8s.io/karpenter/pkg/controllers/state"
	"sigs.k8s.io/karpenter/pkg/operator"
)

func main() {
	ctx, op := operator.NewOperator()
	// Instance types come from INSTANCE_TYPES_FILE_PATH (the lab writes GPU types there).
	types, err := kwok.ConstructInstanceTypes(ctx)
	if err != nil {
		log.FromContext(ctx).Error(err, "failed constructing instance types")
		panic(err)
	}
	provider := kwok.NewCloudProvider(ctx, op.GetClient(), types)
	decorated := overlay.Decorate(provider, op.GetClient(), op.InstanceTypeStore)
	cluster := state.NewCluster(op.Clock, op.GetClient(), decorated)
	controllerList := controllers.NewControllers(
		ctx, op.Manager, op.Clock, op.GetClient(), op.EventRecorder,
		decorated, provider, cluster, op.InstanceTypeStore,
	)
	op.WithControllers(ctx, controllerList...).Start(ctx)
}
