/** A strict Prometheus text reader: a line that is not blank, a comment or a sample fails. */
import { Registry } from 'prom-client';

export interface Exposition {
  /** `# TYPE` of each metric family. */
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Exposition['samples'] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const [, name, labelText = '', valueText = ''] =
      /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line) ?? [];
    // Go's ParseFloat, as Prometheus reads it: +Inf, NaN (prom-client writes `Nan`), numbers.
    const value = Number(valueText.replace(/^([+-]?)inf$/i, '$1Infinity'));
    if (!name || (Number.isNaN(value) && !/^nan$/i.test(valueText)))
      throw new Error(`not a sample: ${line}`);
    const labels = [...labelText.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, v]) => [key!, v!]);
    samples.push({ name, labels: Object.fromEntries(labels), value });
  }
  return { types, samples };
}

/** The samples of `name` whose labels include `labels` (`exact`: and no others). */
const matching = (exposition: Exposition, name: string, labels: object, exact = false) =>
  exposition.samples.filter(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value) &&
      (!exact || Object.keys(sample.labels).length === Object.keys(labels).length),
  );

/** The value of the one sample of `name` with exactly `labels`. */
export function valueOf(exposition: Exposition, name: string, labels = {}): number {
  const found = matching(exposition, name, labels, true);
  if (found.length !== 1)
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}

export const sumOf = (exposition: Exposition, name: string, labels = {}): number =>
  matching(exposition, name, labels).reduce((sum, sample) => sum + sample.value, 0);

/** GET /metrics, checked for status and Content-Type, parsed. */
export async function scrape(url: string): Promise<Exposition> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  const type = response.headers.get('content-type');
  if (response.status !== 200 || type !== Registry.PROMETHEUS_CONTENT_TYPE)
    throw new Error(`GET /metrics: ${response.status} ${type} ${text.slice(0, 200)}`);
  return parsePrometheusText(text);
}
