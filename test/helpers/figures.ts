/** Figures tests measure while they assert on them; FORKCAST_FIGURES=1 prints each file's. */
const figures = new Map<string, { unit: string; values: number[] }>();

export function recordFigure(name: string, value: number, unit = 'ms'): void {
  const figure = figures.get(name) ?? { unit, values: [] };
  figure.values.push(Math.round(value));
  figures.set(name, figure);
}

export function printFigures(file: string): void {
  if (!process.env['FORKCAST_FIGURES'] || figures.size === 0) return;
  const lines = [...figures].map(
    ([name, { unit, values }]) => `  ${name}: ${values.join(', ')}${unit ? ` ${unit}` : ''}`,
  );
  process.stderr.write(`figures from ${file}:\n${lines.join('\n')}\n`);
}
