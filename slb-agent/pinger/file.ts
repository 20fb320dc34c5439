/**
 * The standalone pinger's file (`slb-agent pinger --config pinger.yaml`): the agent's `pinger:`
 * block plus an optional `api: HOST:PORT` (default 127.0.0.1:9102) for /status and /metrics.
 * Errors are the agent's: `file:line: path: reason`, unknown keys included.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { formatPath, lineAt, schemaIssues, show } from '../../shared/config/yaml-errors.js';
import type { Seg } from '../../shared/config/yaml-errors.js';
import { AgentConfigError, loadYaml, readConfigText } from '../config.js';
import type { AgentConfigIssue } from '../config.js';
import { PingerSchema, resolvePinger } from './config.js';
import { hostPortOrReason } from '../../shared/ip.js';
import type { PingerConfig } from './config.js';

export const DEFAULT_PINGER_API = { host: '127.0.0.1', port: 9102 } as const;

/** The schema of a standalone pinger file. */
export const PingerFileSchema = Type.Object({
  pinger: PingerSchema,
  api: Type.Optional(Type.String()),
}, { additionalProperties: false });

const checkFile = TypeCompiler.Compile(PingerFileSchema);

/** A standalone pinger file, validated. */
export interface PingerFileConfig {
  readonly file: string;
  readonly pinger: PingerConfig;
  readonly api: { readonly host: string; readonly port: number };
}


/** Parses and validates a standalone pinger file; throws AgentConfigError listing every error. */
export function parsePingerFile(text: string, file: string): PingerFileConfig {
  const { doc, lc, raw } = loadYaml(text, file);
  const errors: AgentConfigIssue[] = [];
  const push = (segs: readonly Seg[], at: readonly Seg[], reason: string): void => {
    const line = lineAt(doc, lc, segs);
    const path = formatPath(at);
    errors.push(line === undefined ? { file, path, reason } : { file, line, path, reason });
  };
  if (!checkFile.Check(raw)) {
    for (const i of schemaIssues(checkFile, raw, doc, lc)) errors.push({ file, ...i });
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new AgentConfigError(errors);
  }
  const pinger = resolvePinger(raw.pinger, ['pinger'], (segs, reason) => push(segs, segs, reason));
  let api: { host: string; port: number } = { ...DEFAULT_PINGER_API };
  if (raw.api !== undefined) {
    const hp = hostPortOrReason(raw.api);
    if (typeof hp === 'string') push(['api'], ['api'], hp);
    else api = hp;
  }
  if (errors.length > 0) {
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new AgentConfigError(errors);
  }
  return { file, pinger, api };
}

/** Reads and parses a standalone pinger file; throws AgentConfigError (also when unreadable). */
export async function loadPingerFile(file: string): Promise<PingerFileConfig> {
  return parsePingerFile(await readConfigText(file), file);
}
