// Benchmark driver for the official WorkOS Node SDK (@workos-inc/node 11.0.0
// from tests/compat/node11): encrypt+decrypt pairs against a key server.
//
// Usage: node tests/compat/bench/node.mjs < request.json
//
// Reads ONE JSON object on stdin:
//   {"base_url", "api_key", "count", "concurrency", "size", "warmup"?}
// and runs `warmup` (default 50) untimed pairs, then `count` timed pairs of
// vault.encrypt + vault.decrypt on a `size`-byte ASCII plaintext, with
// `concurrency` pairs in flight (a pool of async workers over one client).
// Prints ONE JSON object: {"pairs", "seconds", "cpu_seconds"}, where
// cpu_seconds is this process's user + system CPU time over the timed pairs
// (process.cpuUsage). Exit code 2 on a malformed request, 1 on a failed pair.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

function die(code, message) {
  process.stderr.write(`bench/node.mjs: ${message}\n`);
  process.exit(code);
}

// The same bytes as vault_bench::payload: a..z0..9, repeating.
function payload(size) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (let i = 0; i < size; i++) out += alphabet[i % alphabet.length];
  return out;
}

async function runPairs(vault, count, concurrency, plaintext, context, aad) {
  let next = 0;
  async function worker() {
    while (next < count) {
      next += 1;
      const ciphertext = await vault.encrypt(plaintext, context, aad);
      const opened = await vault.decrypt(ciphertext, aad);
      if (opened !== plaintext) throw new Error('a pair did not round-trip');
    }
  }
  const workers = [];
  for (let i = 0; i < Math.max(1, Math.min(concurrency, count)); i++) workers.push(worker());
  await Promise.all(workers);
}

async function main() {
  let request;
  try {
    request = JSON.parse(readFileSync(0, 'utf8'));
  } catch (e) {
    die(2, `stdin is not one JSON object: ${e.message}`);
  }
  for (const name of ['base_url', 'api_key']) {
    if (typeof request[name] !== 'string') die(2, `${name} (string) is required`);
  }
  for (const name of ['count', 'concurrency', 'size']) {
    if (!Number.isInteger(request[name]) || request[name] < 0) die(2, `${name} (integer) is required`);
  }
  const warmup = request.warmup === undefined ? 50 : request.warmup;

  const here = dirname(fileURLToPath(import.meta.url));
  const require = createRequire(join(here, '..', 'node11', 'package.json'));
  let WorkOS;
  try {
    ({ WorkOS } = require('@workos-inc/node'));
  } catch (e) {
    die(2, `cannot load @workos-inc/node from tests/compat/node11: ${e.message} (run \`cargo xtask compat\`)`);
  }
  const url = new URL(request.base_url);
  // The SDK's defaults otherwise (retries on, as ours).
  const workos = new WorkOS(request.api_key, {
    apiHostname: url.hostname,
    https: url.protocol === 'https:',
    port: url.port ? Number(url.port) : undefined,
  });
  const plaintext = payload(request.size);
  const context = { organization_id: 'org_bench' };
  const aad = 'user_42';

  await runPairs(workos.vault, warmup, request.concurrency, plaintext, context, aad);
  const cpu = process.cpuUsage();
  const start = performance.now();
  await runPairs(workos.vault, request.count, request.concurrency, plaintext, context, aad);
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  process.stdout.write(JSON.stringify({ pairs: request.count, seconds, cpu_seconds: cpuSeconds }) + '\n');
}

main().catch((e) => die(1, `a pair failed: ${e && e.stack ? e.stack : e}`));
