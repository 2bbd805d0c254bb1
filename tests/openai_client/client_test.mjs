// The official OpenAI Node client against `routenlp serve` (issue #14 item 5).
//
//   node tests/openai_client/client_test.mjs /path/to/routenlp
//
// Starts a fake OpenAI-compatible upstream (fake_upstream.mjs) and `routenlp serve` on
// 127.0.0.1 (ephemeral ports): a two-tier cascade (cheap -> strong, an `always` router starting
// at the cheap tier, a hand-written calibration accepting the cheap tier's answer when its
// uncertainty 1 - exp(mean logprob) is at most 0.5; the fake's answers have 0.01), API keys
// configured. Then checks, with the `openai` package:
// plain chat, streaming chat, OpenAI-style errors raised as APIError with the right status, and
// escalation past a 5xx / timeout / garbage / slow upstream. Exit 0 = pass, 1 = fail,
// 77 = skipped (the `openai` package is not installed: `npm ci` in this folder).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeUpstream, answerText } from './fake_upstream.mjs';

const SKIP = 77;
let OpenAI, APIError;
try {
  const mod = await import('openai');
  OpenAI = mod.default; APIError = mod.APIError;
} catch (e) {
  console.log(`SKIPPED: the npm package 'openai' is not installed (cd tests/openai_client && npm ci): ${e.code || e.message}`);
  process.exit(SKIP);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = process.argv[2] || process.env.ROUTENLP;
if (!cli || !fs.existsSync(cli)) { console.error(`usage: client_test.mjs /path/to/routenlp (got '${cli}')`); process.exit(2); }
const portfolio = path.resolve(here, '../../data/configs/routellm.yaml');

let failures = 0, checks = 0;
function check(cond, what) {
  ++checks;
  if (!cond) { ++failures; console.error(`FAIL: ${what}`); } else console.log(`ok: ${what}`);
}

const up = await startFakeUpstream({ cheapModel: 'cheap', hangMs: 10000 });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rn-openai-client-'));
fs.writeFileSync(path.join(work, 'keys.txt'),
  'tester sk-test-good-0123456789\nlimited sk-test-limited-0123456789 rate_per_s=0.01 burst=1\n');
fs.writeFileSync(path.join(work, 'calib.json'), JSON.stringify({
  format: 'routenlp-calibration', format_version: 2,
  options: { method: 'ltt', alpha: 0.1, epsilon: 0.1 },
  provenance: { data_hash: 'hand-written', n: 0, alpha: 0.1, epsilon: 0.1, method: 'ltt' },
  table: { tiers: ['mixtral-8x7b', 'gpt-4-1106'], columns: ['*'], alphas: [0.1], base_alpha: 0, delta: [0.5, 'inf'] },
  cells: [],
}));
fs.writeFileSync(path.join(work, 'serve.yaml'), `portfolio: ${portfolio}
router: {kind: always, tier: mixtral-8x7b}
calibration: calib.json
tiers:
  - name: mixtral-8x7b
    endpoint: {base_url: "http://127.0.0.1:${up.port}", model: cheap, timeout_ms: 1500, max_retries: 0}
  - name: gpt-4-1106
    endpoint: {base_url: "http://127.0.0.1:${up.port}", model: strong, timeout_ms: 5000, max_retries: 0}
server: {host: 127.0.0.1, port: 0, threads: 4, default_policy: threshold}
auth: {keys_file: keys.txt}
`);

const srv = spawn(cli, ['serve', path.join(work, 'serve.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
let srvErr = '';
srv.stderr.on('data', (d) => { srvErr += d; });
const port = await new Promise((resolve, reject) => {
  let out = '';
  const t = setTimeout(() => reject(new Error('routenlp serve did not start in 30 s: ' + srvErr)), 30000);
  srv.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
    if (m) { clearTimeout(t); resolve(Number(m[1])); }
  });
  srv.on('exit', (code) => { clearTimeout(t); reject(new Error(`routenlp serve exited ${code}: ${srvErr}`)); });
});

const baseURL = `http://127.0.0.1:${port}/v1`;
const client = new OpenAI({ baseURL, apiKey: 'sk-test-good-0123456789', maxRetries: 0, timeout: 20000 });
const ask = (content, extra = {}) => ({ model: 'threshold', messages: [{ role: 'user', content }], ...extra });

async function expectError(what, fn, status, type) {
  try {
    await fn();
    check(false, `${what}: raises APIError ${status} (it succeeded)`);
  } catch (e) {
    check(e instanceof APIError, `${what}: raises an APIError (${e.constructor.name}: ${e.message})`);
    check(e.status === status, `${what}: status ${status} (got ${e.status})`);
    if (type) check(e.type === type || e.code === type || (e.error && e.error.type === type),
                    `${what}: error type/code '${type}' (type ${e.type}, code ${e.code})`);
    return e;
  }
}

try {
  // --- plain chat
  const q = 'What is 17 * 23?';
  const { data: plain, response } = await client.chat.completions.create(ask(q)).withResponse();
  check(plain.object === 'chat.completion', `plain: object chat.completion (${plain.object})`);
  check(plain.model === 'mixtral-8x7b', `plain: model is the answering (cheap) tier (${plain.model})`);
  check(plain.choices.length === 1 && plain.choices[0].message.role === 'assistant', 'plain: one assistant choice');
  check(plain.choices[0].message.content === answerText('cheap', q), `plain: content (${plain.choices[0].message.content})`);
  check(plain.choices[0].finish_reason === 'stop', 'plain: finish_reason stop');
  check(plain.usage && plain.usage.prompt_tokens === 11 && plain.usage.completion_tokens === 7 &&
        plain.usage.total_tokens === 18, `plain: the upstream's usage (${JSON.stringify(plain.usage)})`);
  check(response.headers.get('x-routenlp-tier') === 'mixtral-8x7b', 'plain: x-routenlp-tier header');
  check(plain.routenlp && plain.routenlp.trace.length === 1 && plain.routenlp.trace[0].decision === 'accepted',
        `plain: routenlp trace: the cheap tier accepted (${JSON.stringify(plain.routenlp && plain.routenlp.trace)})`);

  // --- streaming chat: chunks assembled equal the non-streamed answer; ends with [DONE]
  const stream = await client.chat.completions.create(ask(q, { stream: true, stream_options: { include_usage: true } }));
  let text = '', finish = null, chunks = 0, usage = null, role = null, streamModel = null;
  for await (const chunk of stream) {
    ++chunks;
    check(chunk.object === 'chat.completion.chunk', `stream: chunk ${chunks} is a chat.completion.chunk`);
    streamModel = chunk.model || streamModel;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta && c.delta.role) role = c.delta.role;
      if (c.delta && typeof c.delta.content === 'string') text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check(text === plain.choices[0].message.content, `stream: assembled text equals the non-streamed answer (${JSON.stringify(text)})`);
  check(role === 'assistant' && finish === 'stop', `stream: role assistant, finish_reason stop (${role}, ${finish})`);
  check(streamModel === 'mixtral-8x7b', `stream: model (${streamModel})`);
  check(usage && usage.total_tokens === 18, `stream: usage chunk with include_usage (${JSON.stringify(usage)})`);
  check(chunks >= 3, `stream: several chunks (${chunks}), iteration ended (data: [DONE])`);

  // a longer answer arrives in several content pieces
  const long = 'word '.repeat(60).trim();
  const s2 = await client.chat.completions.create(ask(long, { stream: true }));
  let t2 = '', pieces = 0;
  for await (const chunk of s2) for (const c of chunk.choices) if (c.delta && c.delta.content) { t2 += c.delta.content; ++pieces; }
  check(t2 === answerText('cheap', long) && pieces > 1, `stream: a long answer in ${pieces} pieces, reassembled exactly`);

  // --- escalation past a failing cheap upstream (the strong tier answers; the trace names the
  // error); a slow (dripped) cheap answer is still whole and accepted
  for (const [fault, needle] of [['500', 'HTTP 500'], ['timeout', 'timed out'], ['garbage', 'malformed'], ['slow', null]]) {
    const qf = `tell me something [fault:${fault}]`;
    const before = up.calls.length;
    const r = await client.chat.completions.create(ask(qf));
    const who = needle ? 'strong' : 'cheap';
    check(r.choices[0].message.content === answerText(who, qf), `fault ${fault}: answered by the ${who} tier`);
    const t0 = r.routenlp.trace[0];
    if (needle) {
      check(t0.decision === 'error' && String(t0.error).includes(needle),
            `fault ${fault}: cheap tier's trace entry is an error containing '${needle}' (${t0.decision}: ${t0.error})`);
    } else {
      check(t0.decision === 'accepted' && !t0.error, `fault ${fault}: the slow cheap answer arrived whole and was accepted (${t0.decision})`);
    }
    check(up.calls.length - before === (needle ? 2 : 1), `fault ${fault}: ${needle ? 2 : 1} upstream call(s), no retries configured`);
    // and streamed: the same escalated answer as events
    const sf = await client.chat.completions.create(ask(qf, { stream: true }));
    let tf = '';
    for await (const chunk of sf) for (const c of chunk.choices) if (c.delta && c.delta.content) tf += c.delta.content;
    check(tf === answerText(who, qf), `fault ${fault}: streamed answer equals the ${who} tier's`);
  }

  // --- tool calls of the answering upstream reach the client (non-streamed)
  const tc = await client.chat.completions.create(ask('weather in Paris? [fault:tools]', {
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  }));
  const tcm = tc.choices[0].message;
  check(tc.choices[0].finish_reason === 'tool_calls', `tools: finish_reason tool_calls (${tc.choices[0].finish_reason})`);
  check(tcm.content === null && Array.isArray(tcm.tool_calls) && tcm.tool_calls.length === 1 &&
        tcm.tool_calls[0].function.name === 'get_weather' &&
        JSON.parse(tcm.tool_calls[0].function.arguments).city === 'Paris',
        `tools: message.tool_calls relayed (${JSON.stringify(tcm)})`);

  // --- errors as OpenAI error objects -> APIError with the status
  await expectError('no tier answers', () => client.chat.completions.create(ask('x [fault:all500]')), 502);
  await expectError('no tier answers (stream)', () => client.chat.completions.create(ask('x [fault:all500]', { stream: true })), 502);
  await expectError('bad request n=2', () => client.chat.completions.create(ask('hi', { n: 2 })), 400, 'invalid_request_error');
  await expectError('bad request no messages', () => client.chat.completions.create({ model: 'threshold', messages: [] }), 400);
  await expectError('unknown model', () => client.chat.completions.create({ ...ask('hi'), model: 'no-such-model' }), 404);
  const bad = new OpenAI({ baseURL, apiKey: 'sk-wrong-key', maxRetries: 0 });
  const e401 = await expectError('wrong API key', () => bad.chat.completions.create(ask('hi')), 401, 'invalid_api_key');
  check(e401 && !String(e401.message).includes('sk-wrong-key'), '401: the key is not echoed');
  const limited = new OpenAI({ baseURL, apiKey: 'sk-test-limited-0123456789', maxRetries: 0 });
  const first = await limited.chat.completions.create(ask('first'));
  check(first.choices[0].message.content === answerText('cheap', 'first'), 'rate-limited key: first request (burst 1) answered');
  const e429 = await expectError('rate limit', () => limited.chat.completions.create(ask('second')), 429, 'rate_limit_exceeded');
  check(e429 && Number(e429.headers && e429.headers.get('retry-after')) >= 1, `429: Retry-After header (${e429 && e429.headers && e429.headers.get('retry-after')})`);

  // --- models list through the client
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  check(models.includes('mixtral-8x7b') && models.includes('gpt-4-1106') && models.includes('threshold'),
        `models.list: tiers and policies (${models.join(' ')})`);
} catch (e) {
  ++failures;
  console.error('FAIL: unexpected exception:', e);
} finally {
  srv.kill('SIGTERM');
  await new Promise((r) => (srv.exitCode !== null ? r() : srv.on('exit', r)));
  up.server.closeAllConnections?.();
  up.server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
if (srv.exitCode !== 0 && srv.signalCode === null) { ++failures; console.error(`FAIL: routenlp serve exit code ${srv.exitCode}: ${srvErr}`); }
console.log(`${checks - failures}/${checks} checks passed${failures ? `, ${failures} FAILED` : ''}`);
process.exit(failures ? 1 : 0);
