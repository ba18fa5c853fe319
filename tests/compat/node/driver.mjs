// Cross-SDK compatibility driver for the official WorkOS Node SDK.
//
// Usage: node tests/compat/node/driver.mjs <node11|node8|node7>  < request.json
//   (or set COMPAT_NODE_SDK=node11|node8|node7 instead of the argument)
//
// Reads ONE JSON request object on stdin and writes ONE JSON object on stdout.
// The SDK is loaded from tests/compat/<version>/node_modules (installed with
// `npm ci` there), so the working directory does not matter. See README.md.
//
// Exit codes: 0 on success and on SDK errors (reported as
// {"error", "error_type", ...}); 2 on a malformed request or a missing SDK.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSIONS = ['node11', 'node8', 'node7'];

class UsageError extends Error {}

function die(message) {
  process.stderr.write(`driver.mjs: ${message}\n`);
  process.exit(2);
}

function loadSdk(version) {
  if (!VERSIONS.includes(version)) {
    die(`SDK version must be one of ${VERSIONS.join(', ')} (argv[2] or COMPAT_NODE_SDK), got ${JSON.stringify(version)}`);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const folder = join(here, '..', version);
  const require = createRequire(join(folder, 'package.json'));
  let sdk;
  let pkg;
  try {
    sdk = require('@workos-inc/node');
    // 7.x's "exports" map hides package.json from require(), so read it.
    pkg = JSON.parse(readFileSync(join(folder, 'node_modules', '@workos-inc', 'node', 'package.json'), 'utf8'));
  } catch (e) {
    die(`cannot load @workos-inc/node from ${folder}: ${e.message} (run \`npm ci\` there)`);
  }
  return { WorkOS: sdk.WorkOS, sdkVersion: pkg.version };
}

// [major, minor] of an SDK version string.
function majorMinor(sdkVersion) {
  const [major, minor] = sdkVersion.split('.').map(Number);
  return [major, minor];
}

// `maxRetries` is a constructor option from 10.8.0; older versions (7.x,
// 8.x) only have the HttpClient's MAX_RETRY_ATTEMPTS field.
function hasMaxRetriesOption(sdkVersion) {
  const [major, minor] = majorMinor(sdkVersion);
  return major > 10 || (major === 10 && minor >= 8);
}

// vault.encrypt/decrypt take associated data from 7.50.0; 7.42-7.49 have
// `encrypt(data, context)` and `decrypt(encryptedData)` only.
function takesAad(sdkVersion) {
  const [major, minor] = majorMinor(sdkVersion);
  return major > 7 || (major === 7 && minor >= 50);
}

function makeClient(WorkOS, sdkVersion, request) {
  if (typeof request.base_url !== 'string') throw new UsageError('base_url (string) is required');
  if (typeof request.api_key !== 'string') throw new UsageError('api_key (string) is required');
  const url = new URL(request.base_url);
  const https = url.protocol === 'https:';
  const options = {
    apiHostname: url.hostname,
    https,
    // `port` is appended to the base URL only when truthy.
    port: url.port ? Number(url.port) : undefined,
  };
  // Retries are off by default so failures are deterministic and fast;
  // pass "max_retries": null for the SDK's default, or a number.
  const maxRetries = request.max_retries === undefined ? 0 : request.max_retries;
  const option = hasMaxRetriesOption(sdkVersion);
  if (maxRetries !== null && option) options.maxRetries = maxRetries;
  const workos = new WorkOS(request.api_key, options);
  if (maxRetries !== null && !option) {
    // 8.x retries /vault/ paths (408, 500, 502, 504, network errors) up to
    // MAX_RETRY_ATTEMPTS times; 7.x retries only /fga/ paths, so the field
    // changes nothing for vault calls there.
    workos.client.MAX_RETRY_ATTEMPTS = maxRetries;
  }
  return workos;
}

function requireString(op, name) {
  if (typeof op[name] !== 'string') throw new UsageError(`${op.op}: ${name} (string) is required`);
  return op[name];
}

function optionalString(op, name) {
  const value = op[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new UsageError(`${op.op}: ${name} must be a string or null`);
  return value;
}

function requireObject(op, name) {
  const value = op[name];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${op.op}: ${name} (object) is required`);
  }
  return value;
}

function dataKeyPair(result) {
  // 7.x, 8.x and 11.x all return { context, dataKey: { key, id }, encryptedKeys }.
  return {
    context: result.context,
    data_key: result.dataKey.key,
    encrypted_keys: result.encryptedKeys,
    id: result.dataKey.id,
  };
}

function metadata(m) {
  return {
    id: m.id,
    version_id: m.versionId,
    environment_id: m.environmentId,
    key_id: m.keyId,
    context: m.context,
    updated_at: m.updatedAt.toISOString(),
    updated_by: m.updatedBy,
  };
}

function vaultObject(o) {
  const out = { id: o.id, name: o.name, version_id: o.metadata.versionId };
  if (o.value !== undefined) out.value = o.value;
  return out;
}

function describeError(e) {
  const out = {
    error: e && e.message ? String(e.message) : String(e),
    error_type: (e && e.constructor && e.constructor.name) || typeof e,
  };
  if (e && typeof e.name === 'string' && e.name !== out.error_type) out.error_name = e.name;
  if (e && typeof e.status === 'number') out.status = e.status;
  if (e && typeof e.requestID === 'string' && e.requestID) out.request_id = e.requestID;
  if (e && e.cause && e.cause.message) out.cause = String(e.cause.message);
  return out;
}

// A non-empty AAD for an SDK whose encrypt/decrypt take none is reported,
// not dropped: the SDK would ignore the extra argument silently. `""` is the
// same as no AAD in AES-GCM, so it passes.
function unsupportedAad(sdkVersion, aad) {
  if (!aad || takesAad(sdkVersion)) return null;
  return { error: `@workos-inc/node ${sdkVersion} takes no associated data`, error_type: 'Unsupported' };
}

async function runOp(workos, sdkVersion, op) {
  if (op === null || typeof op !== 'object' || Array.isArray(op)) throw new UsageError('each op must be an object');
  const vault = workos.vault;
  // Validate arguments before calling the SDK so usage errors are not reported as SDK errors.
  switch (op.op) {
    case 'create_data_key': {
      const context = requireObject(op, 'context');
      return call(async () => dataKeyPair(await vault.createDataKey({ context })));
    }
    case 'decrypt_data_key': {
      const keys = requireString(op, 'keys');
      return call(async () => {
        const r = await vault.decryptDataKey({ keys });
        return { data_key: r.key, id: r.id };
      });
    }
    case 'rekey': {
      const context = requireObject(op, 'context');
      const encryptedKeys = requireString(op, 'encrypted_keys');
      if (typeof vault.createRekey !== 'function') {
        return { error: 'this SDK version has no rekey method', error_type: 'Unsupported' };
      }
      return call(async () => {
        const r = await vault.createRekey({ context, encryptedKeys });
        // createRekey returns the flat deserialized response.
        return { context: r.context, data_key: r.dataKey, encrypted_keys: r.encryptedKeys, id: r.id };
      });
    }
    case 'encrypt': {
      const context = requireObject(op, 'context');
      const plaintext = requireString(op, 'plaintext');
      const aad = optionalString(op, 'aad');
      const unsupported = unsupportedAad(sdkVersion, aad);
      if (unsupported) return unsupported;
      return call(async () => ({ ciphertext: await vault.encrypt(plaintext, context, aad) }));
    }
    case 'decrypt': {
      const ciphertext = requireString(op, 'ciphertext');
      const aad = optionalString(op, 'aad');
      const unsupported = unsupportedAad(sdkVersion, aad);
      if (unsupported) return unsupported;
      return call(async () => ({ plaintext: await vault.decrypt(ciphertext, aad) }));
    }
    // The objects (key-value) API, 11.x only.
    case 'create_object': {
      const name = requireString(op, 'name');
      const value = requireString(op, 'value');
      const context = requireObject(op, 'context');
      return call(async () => metadata(await vault.createObject({ name, value, context })));
    }
    case 'read_object': {
      const id = requireString(op, 'id');
      return call(async () => vaultObject(await vault.readObject({ id })));
    }
    case 'read_object_by_name': {
      const name = requireString(op, 'name');
      return call(async () => vaultObject(await vault.readObjectByName(name)));
    }
    case 'describe_object': {
      const id = requireString(op, 'id');
      return call(async () => vaultObject(await vault.describeObject({ id })));
    }
    case 'update_object': {
      const id = requireString(op, 'id');
      const value = requireString(op, 'value');
      const versionCheck = optionalString(op, 'version_check');
      return call(async () => vaultObject(await vault.updateObject({ id, value, versionCheck })));
    }
    case 'delete_object': {
      const id = requireString(op, 'id');
      const versionCheck = optionalString(op, 'version_check');
      return call(async () => {
        await vault.deleteObject({ id, versionCheck });
        return { deleted: true };
      });
    }
    case 'list_object_versions': {
      const id = requireString(op, 'id');
      return call(async () => ({
        versions: (await vault.listObjectVersions({ id })).map((v) => ({
          id: v.id,
          current_version: v.currentVersion,
          size: v.size,
          etag: v.etag,
          created_at: v.createdAt.toISOString(),
        })),
      }));
    }
    case 'list_objects': {
      const options = {};
      for (const name of ['before', 'after', 'order', 'search']) {
        const value = optionalString(op, name);
        if (value !== undefined) options[name] = value;
      }
      if (typeof op.limit === 'number') options.limit = op.limit;
      const updatedAfter = optionalString(op, 'updated_after');
      if (updatedAfter !== undefined) options.updatedAfter = new Date(updatedAfter);
      return call(async () => {
        const page = await vault.listObjects(options);
        if (op.all) return { names: (await page.autoPagination()).map((o) => o.name) };
        return {
          names: page.data.map((o) => o.name),
          before: page.listMetadata.before,
          after: page.listMetadata.after,
        };
      });
    }
    case 'batch': {
      if (!Array.isArray(op.ops)) throw new UsageError('batch: ops (array) is required');
      const results = [];
      for (const inner of op.ops) {
        if (inner && inner.op === 'batch') throw new UsageError('batch: nested batch is not allowed');
        results.push(await runOp(workos, sdkVersion, inner));
      }
      return { results };
    }
    default:
      throw new UsageError(`unknown op ${JSON.stringify(op.op)}`);
  }
}

async function call(fn) {
  try {
    return await fn();
  } catch (e) {
    return describeError(e);
  }
}

async function main() {
  const { WorkOS, sdkVersion } = loadSdk(process.argv[2] || process.env.COMPAT_NODE_SDK);
  let request;
  try {
    request = JSON.parse(readFileSync(0, 'utf8'));
  } catch (e) {
    die(`stdin is not one JSON object: ${e.message}`);
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) die('stdin must hold a JSON object');
  let output;
  try {
    const workos = makeClient(WorkOS, sdkVersion, request);
    output = await runOp(workos, sdkVersion, request);
  } catch (e) {
    if (e instanceof UsageError) die(e.message);
    throw e;
  }
  process.stdout.write(JSON.stringify(output) + '\n');
}

main().catch((e) => die(`internal error: ${e && e.stack ? e.stack : e}`));
