// Command otel-collector is a minimal OpenTelemetry Collector distribution for Portcullis'
// end-to-end suite: the OTLP receiver (gRPC and HTTP) and the file exporter (OTLP JSON, one
// line per batch), nothing else. Its config comes from a YAML file:
//
//	otel-collector --config /path/to/config.yaml
//
// scripts/e2e writes that file (an otlp receiver on a free 127.0.0.1 port, a traces pipeline
// into a file exporter) and reads what the exporter wrote. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

// version is the release of the collector modules in go.mod, all of them at one release.
const version = "0.161.0"

// components are the only factories this distribution knows: a config naming any other
// receiver, processor, exporter or extension is refused at start-up.
func components() (otelcol.Factories, error) {
	receivers, err := otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory())
	if err != nil {
		return otelcol.Factories{}, err
	}
	exporters, err := otelcol.MakeFactoryMap[exporter.Factory](fileexporter.NewFactory())
	if err != nil {
		return otelcol.Factories{}, err
	}
	return otelcol.Factories{
		Receivers: receivers,
		Exporters: exporters,
		// The collector's own logs and metrics (required by the service).
		Telemetry: otelconftelemetry.NewFactory(),
		// For `otel-collector components`.
		ReceiverModules: map[component.Type]string{
			otlpreceiver.NewFactory().Type(): "go.opentelemetry.io/collector/receiver/otlpreceiver v" + version,
		},
		ExporterModules: map[component.Type]string{
			fileexporter.NewFactory().Type(): "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter v" + version,
		},
	}, nil
}

func main() {
	settings := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otel-collector",
			Description: "OpenTelemetry Collector for Portcullis' end-to-end suite (OTLP in, OTLP JSON file out)",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				// --config PATH (or file:PATH) only: no env:, http: or yaml: sources.
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
				// What a bare ${NAME} in the config means; NewCommand would pick env, which
				// this distribution leaves out. The configs scripts/e2e writes use none.
				DefaultScheme: "file",
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "otel-collector: %v\n", err)
		os.Exit(1)
	}
}
