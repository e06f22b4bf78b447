//go:build tools

// Package crdgen only pins the API packages that controller-gen reads.
package crdgen

import (
	_ "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)
