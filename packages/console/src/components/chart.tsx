import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  readonly label: string;
  readonly color: string;
}

/**
 * A uPlot time series. `data[0]` is x (Unix seconds), then one array per series (null where a
 * series has no point). The figure carries a text summary for screen readers and tests.
 */
export function Chart(props: { title: string; series: readonly Series[]; data: (number | null)[][]; summary: string; testId?: string }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.series.map((s) => s.label).join('|');

  useEffect(() => {
    if (el.current === null) return undefined;
    const width = Math.max(320, el.current.clientWidth || 640);
    const u = new uPlot(
      {
        width,
        height: 220,
        legend: { show: false },
        // One point alone would make uPlot span years around it: show the last minute instead.
        scales: { x: { time: true, range: (_u, min, max) => (min === max ? [min - 60, max + 1] : [min, max]) } },
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, points: { show: true, size: 5 } }))],
        axes: [{}, {}],
      },
      props.data as uPlot.AlignedData,
      el.current,
    );
    plot.current = u;
    return () => {
      u.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(props.data as uPlot.AlignedData);
  }, [props.data]);

  return (
    <figure class="chart" data-testid={props.testId} data-series={shape}>
      <figcaption>
        <strong>{props.title}</strong>
        <span class="legend">
          {props.series.map((s) => (
            <span key={s.label} class="legend-item">
              <span class="swatch" style={{ background: s.color }} aria-hidden="true" />
              {s.label}
            </span>
          ))}
        </span>
      </figcaption>
      <div ref={el} role="img" aria-label={`${props.title}: ${props.summary}`} />
      <p class="sr-only">{props.summary}</p>
    </figure>
  );
}
