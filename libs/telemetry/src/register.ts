// Loaded with `node --import @twofold/telemetry/register` so the SDK starts before any
// other module of the service is evaluated.
import { startTracing } from './tracing.js';

process.env['OTEL_TRACES_EXPORTER'] ??=
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']
    ? 'otlp'
    : 'none';
process.env['OTEL_METRICS_EXPORTER'] ??= 'none';
process.env['OTEL_LOGS_EXPORTER'] ??= 'none';
startTracing(process.env['OTEL_SERVICE_NAME'] ?? 'twofold');
