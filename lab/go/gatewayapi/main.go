// Command gateway-api-version prints the Gateway API bundle version this module pins.
//
// The module exists for the lab's manifests mechanism (build.py, GoModule.manifests): the
// Gateway API CRDs the lab installs for its Gateway (Traefik, a host process) are taken from
// the sigs.k8s.io/gateway-api source at the version this go.mod selects, so the CRDs, this
// binary and the version the lab reports never disagree. The constant package imports
// nothing, so the build compiles no Kubernetes client code.
package main

import (
	"fmt"

	"sigs.k8s.io/gateway-api/pkg/consts"
)

func main() {
	fmt.Println(consts.BundleVersion)
}
