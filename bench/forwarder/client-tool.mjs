#!/usr/bin/env node
// The client side of bench/forwarder.mjs, run inside the client namespace. Prints one JSON line.
//   http URL [--count N] [--deadline MS]
//       N GETs, each on a new connection (agent: false); retries until the first one answers or
//       the deadline passes. -> {"ids": ["rs1", ...], "errors": E}
//   udp --vip ADDR --port P --count K [--port0 20000] [--timeout MS] [--retries R] [--batch B]
//       K flows: flow i sends from 10.78.(i / 250).(1 + i % 250) : port0 + i % 1000 (addresses the
//       bench put on the client's eth0) one datagram `i` to ADDR:P and records the id in the
//       answer (`ID:i`); retries R times after MS without an answer; B flows at a time.
//       -> {"ids": ["rs3", null, ...]} (null: no answer)
import dgram from 'node:dgram';
import http from 'node:http';
import { parseArgs } from 'node:util';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const [cmd, ...rest] = process.argv.slice(2);

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function httpCmd() {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { count: { type: 'string' }, deadline: { type: 'string' } } });
  const url = positionals[0];
  const count = Number(values.count ?? 12);
  const deadline = performance.now() + Number(values.deadline ?? 5000);
  const ids = [];
  let errors = 0;
  let lastError = '';
  for (let i = 0; i < count + 1000 && ids.length < count; i++) { // bounded
    try {
      ids.push(await get(url));
    } catch (err) {
      errors++;
      lastError = err.message;
      if (performance.now() > deadline) break;
      await sleep(50);
    }
  }
  return { ids, errors, lastError };
}

function flowSource(i) {
  return `10.78.${Math.floor(i / 250)}.${1 + (i % 250)}`;
}

function oneFlow(i, vip, port, port0, timeoutMs, retries) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    let tries = 0;
    let timer;
    const done = (id) => { clearTimeout(timer); try { sock.close(); } catch { /* closed */ } resolve(id); };
    const send = () => {
      if (tries++ > retries) { done(null); return; }
      sock.send(String(i), port, vip);
      timer = setTimeout(send, timeoutMs);
    };
    sock.on('error', () => done(null));
    sock.on('message', (msg) => {
      const text = msg.toString();
      const k = text.lastIndexOf(':');
      if (k > 0 && text.slice(k + 1) === String(i)) done(text.slice(0, k));
    });
    sock.bind({ address: flowSource(i), port: port0 + (i % 1000) }, send);
  });
}

async function udpCmd() {
  const { values } = parseArgs({ args: rest, options: {
    vip: { type: 'string' }, port: { type: 'string' }, count: { type: 'string' }, port0: { type: 'string' },
    timeout: { type: 'string' }, retries: { type: 'string' }, batch: { type: 'string' },
  } });
  const count = Number(values.count);
  const batch = Number(values.batch ?? 100);
  const ids = new Array(count).fill(null);
  for (let s = 0; s < count; s += batch) {
    const part = [];
    for (let i = s; i < Math.min(count, s + batch); i++) {
      part.push(oneFlow(i, values.vip, Number(values.port), Number(values.port0 ?? 20000), Number(values.timeout ?? 300), Number(values.retries ?? 3)).then((id) => { ids[i] = id; }));
    }
    await Promise.all(part);
  }
  return { ids };
}

const out = cmd === 'http' ? await httpCmd() : cmd === 'udp' ? await udpCmd() : null;
if (out === null) { process.stderr.write('usage: client-tool.mjs http URL ... | udp ...\n'); process.exit(2); }
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
