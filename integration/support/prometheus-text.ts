/**
 * The samples of one metric in a Prometheus text exposition, summed over series, or
 * grouped by one label. Enough for counters and gauges; histograms are not read here.
 */
export function metricSum(text: string, name: string): number {
  return Object.values(metricByLabel(text, name, '')).reduce((a, b) => a + b, 0);
}

export function metricByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const sample = new RegExp(`^${name}(?:\\{([^}]*)\\})?\\s+(\\S+)`);
  for (const line of text.split('\n')) {
    const m = sample.exec(line);
    if (!m) continue;
    const key = label ? (new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(m[1] ?? '')?.[1] ?? '') : '';
    out[key] = (out[key] ?? 0) + Number(m[2]);
  }
  return out;
}
