import { describe, expect, it } from 'vitest';
import { renderDrillHtml } from '../../drill/report-html.js';
import { laneOrder, siteColours, timelineMarks } from '../../drill/report-timeline.js';
import type { DrillResult } from '../../drill/result.js';
import { drainDrill, sample, step, T0 } from './fixture.js';

describe('renderDrillHtml', () => {
  it('escapes every text from the record: a name with <script> shows as text', () => {
    const evil = '<script>alert(1)</script> & "quotes" \'too\'';
    const base = drainDrill(evil);
    const r: DrillResult = {
      ...base,
      reason: evil,
      steps: [...base.steps, step(4, 'run', 9000, 10, `sh -c '${evil}'`)],
      guards: [{ name: evil, tripped: true, at: T0 + 9500, detail: evil }],
      marks: [...base.marks, { t: T0 + 9500, kind: 'guard', label: evil }],
      samples: [...base.samples, { ...sample(9600, `ns<b>`, `v"><img src=x>`, 'tokyo', false), http: { ok: false, status: null, ms: 1, error: evil } }],
    };
    const html = renderDrillHtml(r);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('ns<b>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &#39;too&#39;');
    expect(html).toContain('data-lane="ns&lt;b&gt; @ v&quot;&gt;&lt;img src=x&gt;"');
  });

  it('is self-contained: no script, no external reference, a CSP that forbids fetching', () => {
    const html = renderDrillHtml(drainDrill());
    expect(html).not.toMatch(/<script|<link|src=|href=|@import|url\(/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
  });

  it('has the outcome, a lane per instance × vantage, a client lane per vantage and the marks', () => {
    const html = renderDrillHtml(drainDrill());
    expect(html).toContain('data-outcome="SUCCEEDED"');
    expect(html).toMatch(/<title>SUCCEEDED: drill drain tokyo<\/title>/);
    for (const lane of ['ns1 @ east', 'ns2 @ east', 'ns1 @ west', 'ns2 @ west']) expect(html).toContain(`data-lane="${lane}"`);
    expect(html).toContain('data-vantage="east"');
    expect(html).toContain('data-vantage="west"');
    for (const kind of ['step', 'fault', 'rollback', 'end']) expect(html).toContain(`class="mark mark-${kind}"`);
    expect(html.match(/class="http-fail"/g)).toHaveLength(18);
    expect(html).toContain('<td class="num">605 ms</td>');
    expect(html).toContain('How to read this');
  });

  it('names lanes with name and type when the drill asked several names', () => {
    const r = drainDrill();
    const html = renderDrillHtml({ ...r, samples: [...r.samples, { ...sample(100, 'ns1', 'east', 'osaka'), name: 'api.example.test' }] });
    expect(html).toContain('data-lane="ns1 @ east api.example.test A"');
    expect(html).toContain('data-lane="ns1 @ east www.gslb.example.test A"');
    // shown without the zone both names share, so the label fits left of the lanes; whole on hover
    expect(html).toContain('<title>ns1 @ east www.gslb.example.test A</title>ns1 @ east www.gslb A</text>');
  });

  it('cuts a lane label too long for the room left of the lanes, keeping its start', () => {
    const r = drainDrill();
    const html = renderDrillHtml({ ...r, samples: r.samples.map((s) => ({ ...s, instance: `${s.instance}-in-a-datacenter-far-away` })) });
    expect(html).toMatch(/<title>ns1-in-a-datacenter-far-away @ east<\/title>ns1-in-a-datacenter-far…<\/text>/);
  });

  it('draws failed answers grey and both sites of a two-site answer', () => {
    const r = drainDrill();
    const html = renderDrillHtml({ ...r, samples: [sample(0, 'ns1', 'east', null), { ...sample(500, 'ns1', 'east', 'tokyo'), sites: ['tokyo', 'osaka'], addresses: ['192.0.2.1', '198.51.100.1'] }] });
    expect(html).toContain('data-answer="TIMEOUT"');
    expect(html).toMatch(/data-answer="osaka\+tokyo"><title>[^<]*<\/title>\s*<rect [^>]*height="10.0"[^>]*\/>\s*<rect [^>]*height="10.0"/);
  });

  it('renders a record with no samples, steps or guards', () => {
    const html = renderDrillHtml({ outcome: 'ERROR', name: 'x', startedAt: T0, endedAt: T0, steps: [], rollback: [], guards: [], samples: [], marks: [], reason: 'could not read the plan' });
    expect(html).toContain('data-outcome="ERROR"');
    expect(html).toContain('no steps ran');
    expect(html).toContain('Instances never disagreed.');
  });
});

describe('timeline helpers', () => {
  it('orders lanes by the plan, then by first appearance', () => {
    const r = drainDrill();
    const { vantages, lanes } = laneOrder({ ...r, plan: { instances: ['ns2', 'ns1'], vantages: ['west', 'east'] } });
    expect(vantages).toEqual(['west', 'east']);
    expect(lanes.get('west')?.map((l) => l.instance)).toEqual(['ns2', 'ns1']);
    const { plan: _plan, ...unplanned } = r;
    expect(laneOrder(unplanned).vantages).toEqual(['east', 'west']);
  });

  it('gives each site one colour, by name', () => {
    expect([...siteColours(drainDrill()).keys()]).toEqual(['osaka', 'tokyo']);
  });

  it('adds a fault mark for each action or run step', () => {
    expect(timelineMarks(drainDrill()).filter((m) => m.kind === 'fault').map((m) => m.t - T0)).toEqual([2000, 8000]);
  });
});
