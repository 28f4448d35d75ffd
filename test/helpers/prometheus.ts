/**
 * A strict reader of the Prometheus text format (0.0.4): every line must be a comment, a
 * HELP / TYPE line or a sample, or parsing fails. Label values are unescaped, so tests compare
 * whole label sets instead of matching text.
 */
import { Registry } from 'prom-client';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** `# TYPE` of each metric family. */
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line.startsWith('#')) {
      const type =
        /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) {
        if (types.has(type[1]!)) fail('a second TYPE for the same metric');
        types.set(type[1]!, type[2]!);
      } else if (line.startsWith('# TYPE')) {
        fail('malformed TYPE');
      }
      continue;
    }
    const name = NAME.exec(line)?.[0] ?? fail('no metric name');
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      while (!rest.startsWith('}')) {
        const label = LABEL_NAME.exec(rest)?.[0] ?? fail('bad label name');
        rest = rest.slice(label.length);
        if (!rest.startsWith('="')) fail('expected =" after a label name');
        rest = rest.slice(2);
        let value = '';
        for (;;) {
          const char = rest[0] ?? fail('unterminated label value');
          rest = rest.slice(1);
          if (char === '"') break;
          if (char !== '\\') {
            value += char;
            continue;
          }
          const escaped = rest[0];
          rest = rest.slice(1);
          if (escaped === 'n') value += '\n';
          else if (escaped === '\\' || escaped === '"') value += escaped;
          else fail('bad escape in a label value');
        }
        if (label in labels) fail(`label ${label} twice`);
        labels[label] = value;
        if (rest.startsWith(',')) rest = rest.slice(1);
        else if (!rest.startsWith('}')) fail('expected , or } after a label');
      }
      rest = rest.slice(1);
    }
    // A value, and optionally a timestamp in milliseconds.
    const fields = /^ (\S+)(?: (-?\d+))?$/.exec(rest) ?? fail('expected " value [timestamp]"');
    const value = parseValue(fields[1]!) ?? fail('bad value');
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

/**
 * Prometheus reads values with Go's ParseFloat, which takes NaN and Inf in any case; prom-client
 * writes `Nan` (for event-loop lag when nothing was sampled since the last scrape).
 */
function parseValue(text: string): number | null {
  const word = text.toLowerCase();
  if (word === '+inf' || word === 'inf') return Infinity;
  if (word === '-inf') return -Infinity;
  if (word === 'nan') return NaN;
  const value = Number(text);
  return text.trim() !== '' && !Number.isNaN(value) ? value : null;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length &&
  Object.entries(b).every(([key, value]) => a[key] === value);

const hasLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.entries(b).every(([key, value]) => a[key] === value);

/** The samples of one metric family: `name` itself, or its _bucket / _sum / _count lines. */
export function samplesOf(exposition: Exposition, name: string): Sample[] {
  return exposition.samples.filter((sample) => sample.name === name);
}

/** The value of the one sample of `name` with exactly `labels`; throws unless there is exactly one. */
export function valueOf(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = samplesOf(exposition, name).filter((sample) => sameLabels(sample.labels, labels));
  if (found.length !== 1) {
    throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}, expected 1`);
  }
  return found[0]!.value;
}

/** The sum over the samples of `name` whose labels include `labels`. */
export function sumOf(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  return samplesOf(exposition, name)
    .filter((sample) => hasLabels(sample.labels, labels))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** GET /metrics, checked for status and Content-Type, parsed. */
export async function scrape(url: string): Promise<Exposition> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${text}`);
  const type = response.headers.get('content-type');
  if (type !== Registry.PROMETHEUS_CONTENT_TYPE)
    throw new Error(`GET /metrics: Content-Type ${type}`);
  return parsePrometheusText(text);
}
