// A tiny fake OpenAI-compatible upstream for tests/openai_client/client_test.mjs.
//
// POST /v1/chat/completions answers "<model> says: <last user message>" with chat logprobs and
// usage. A marker in the last user message picks a fault, applied only when the request's
// `model` is in the marker's scope:
//   [fault:500]      the cheap model answers HTTP 500 with an OpenAI error body
//   [fault:timeout]  the cheap model hangs (longer than its tier's timeout_ms)
//   [fault:garbage]  the cheap model answers 200 with a body that is not JSON
//   [fault:slow]     the cheap model sends its (good) body in pieces, 100 ms apart
//   [fault:all500]   every model answers HTTP 500 (nothing can answer: the gateway's 502)
//   [fault:tools]    the cheap model answers a get_weather tool call (content null,
//                    finish_reason tool_calls)
// `cheap` is the model name the serve config gives the cheap tier.
import http from 'node:http';

export function answerText(model, question) {
  return `${model} says: ${question}`;
}

function lastUserText(messages) {
  for (let i = (messages || []).length - 1; i >= 0; --i) {
    const m = messages[i];
    if (m && m.role === 'user') return typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
  }
  return '';
}

export function startFakeUpstream({ cheapModel = 'cheap', hangMs = 10000 } = {}) {
  const calls = [];  // {model, fault}
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', () => {
      let body;
      try { body = JSON.parse(raw); } catch { res.writeHead(400); res.end('bad json'); return; }
      const model = body.model || '';
      const question = lastUserText(body.messages);
      const m = /\[fault:([a-z0-9]+)\]/.exec(question);
      let fault = m ? m[1] : 'none';
      if (fault !== 'all500' && model !== cheapModel) fault = 'none';
      calls.push({ model, fault });
      const text = answerText(model, question);
      const good = JSON.stringify({
        id: 'up-' + calls.length, object: 'chat.completion', created: 1, model,
        choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: text },
                    logprobs: { content: text.split(' ').map((t) => ({ token: t, logprob: -0.01 })) } }],
        usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
      });
      switch (fault) {
        case '500': case 'all500':
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'injected upstream failure', type: 'server_error' } }));
          return;
        case 'timeout': {
          const t = setTimeout(() => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(good); }, hangMs);
          res.on('close', () => clearTimeout(t));
          return;
        }
        case 'tools':
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({
            id: 'up-tools', object: 'chat.completion', created: 1, model,
            choices: [{ index: 0, finish_reason: 'tool_calls', logprobs: { content: [{ token: 'x', logprob: -0.01 }] },
                        message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
                          function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] } }],
            usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 },
          }));
          return;
        case 'garbage':
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end('{"choices": [ <<<this is not json>>>');
          return;
        case 'slow': {
          res.writeHead(200, { 'Content-Type': 'application/json' });  // chunked transfer
          const n = 5, step = Math.ceil(good.length / n);
          let i = 0;
          const tick = () => {
            if (res.destroyed) return;
            res.write(good.slice(i * step, (i + 1) * step));
            if (++i < n) setTimeout(tick, 100); else res.end();
          };
          tick();
          return;
        }
        default:
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(good);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port, calls }));
  });
}
