import { describe, expect, it } from 'vitest';
import { jsonDepthExceeds, MAX_REPORT_DEPTH, scanReportSite } from '../../../dns/http/report-body.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('scanReportSite', () => {
  it.each([
    ['{"site":"tokyo","agent":"a"}', 'tokyo'],
    ['{ "agent" : "a", "members": [{"site":"osaka"}], "site" : "tokyo" }', 'tokyo'],
    ['{"agent":"say \\"site\\":\\"osaka\\"","site":"tokyo"}', 'tokyo'],
    ['{"x":{"site":"osaka"},"site":"東京"}', '東京'],
    ['{"site":"tokyo","site":"osaka"}', 'tokyo'],
  ])('%s -> %s', (text, site) => {
    expect(scanReportSite(b(text))).toBe(site);
  });

  it.each([
    '', '[1,2,3]', '"site"', '{"agent":"a"}', '{"site":7}', '{"site":""}', '{"site":"to\\u006byo"}',
    '{"site":"tokyo', '{"members":[{"site":"osaka"}]}', `{"x":${'['.repeat(100)}`,
    `{"x":${'['.repeat(MAX_REPORT_DEPTH)}${']'.repeat(MAX_REPORT_DEPTH)},"site":"tokyo"}`,
  ])('%s -> none', (text) => {
    expect(scanReportSite(b(text))).toBeUndefined();
  });

  it('scans a 400k-deep body without recursion', () => {
    expect(scanReportSite(b(`{"x":${'['.repeat(400_000)}`))).toBeUndefined();
  });
});

describe('jsonDepthExceeds', () => {
  it('counts brackets outside strings only', () => {
    expect(jsonDepthExceeds(b('{"a":[{"b":"[[[[[[[[[[[["}]}'), 3)).toBe(false);
    expect(jsonDepthExceeds(b('{"a":[{"b":[]}]}'), 3)).toBe(true);
    expect(jsonDepthExceeds(b('[[[]]]'), 3)).toBe(false);
    expect(jsonDepthExceeds(b('['.repeat(400_000)), 8)).toBe(true);
  });
});
