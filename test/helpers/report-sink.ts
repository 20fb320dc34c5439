/** A fake gslb-dns for agent tests: accepts every report (200 `{}`) and keeps them in arrival order. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Report } from '../../shared/protocol/report.js';

export interface ReportSink {
  /** `http://127.0.0.1:<port>`, for the agent config's `dns:` */
  readonly url: string;
  readonly reports: Report[];
  /** drops open (keep-alive) connections and closes the server */
  close(): Promise<void>;
}

/** Listens on a port from the OS on 127.0.0.1. */
export async function startReportSink(): Promise<ReportSink> {
  const reports: Report[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => { reports.push(JSON.parse(body) as Report); res.writeHead(200); res.end('{}'); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reports,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
