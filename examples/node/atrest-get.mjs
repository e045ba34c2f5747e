#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// atrest-get in JavaScript: reads atrest data from docs/FORMAT.md alone, with the `jose` package and the built-in fetch.
//
// A third party's Client AE (the contribution's steps 11-19): nothing here
// comes from libatrest. It retrieves a file's manifest and segments (or one
// ESData contentInstance) from a oneM2M CSE over the HTTP binding (TS-0009),
// gets the key from tefd by the kid over tefd's Unix socket (or takes it as
// base64url), verifies every object with jose and checks the `atrest`
// header member of each against where it was found (docs/FORMAT.md 5-7).
//
// Limits: jose does not implement XC20P (only A256GCM and HS256), and the
// built-in fetch cannot present a TLS client certificate, so the HCSE is
// reached over http (loopback) or https without one (CA from
// NODE_EXTRA_CA_CERTS). The C atrest-get does mutual TLS.
//
// Exit codes as atrest-get(1): 0 ok, 1 error, 2 usage, 3 HCSE denied,
// 4 not found, 5 TEF denied, 6 key expired, 7 verification failed,
// 8 unreachable.
import { compactDecrypt, compactVerify, decodeProtectedHeader, base64url } from 'jose';
import http from 'node:http';
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const EXIT = { ERROR: 1, USAGE: 2, HCSE_DENIED: 3, NOT_FOUND: 4, TEF_DENIED: 5, EXPIRED: 6, VERIFY: 7, UNREACHABLE: 8 };
const MAX_NUMBER = 2 ** 53 - 1; // FORMAT.md 2: I-JSON integers
const SEGMENT_SIZE_MIN = 4096;
const SEGMENT_SIZE_MAX = 16 * 1024 * 1024;

class Failure extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const USAGE = `usage: atrest-get.mjs [-v] [--hcse URL] [--origin ID] (--tef SOCKET | --key BASE64URL)
                      [-o FILE] PATH
  --hcse URL      CSEBase URL (default http://127.0.0.1:8080/cse-in)
  --origin ID     X-M2M-Origin (default Catrest-get)
  --tef SOCKET    tefd's Unix socket: the key is asked for by kid, as this uid
  --key=B64URL    the key itself (base64url), instead of asking tefd (use the
                  '=' form: a base64url key may start with '-')
  -o FILE         write the plaintext there (default stdout)
  -v              report each step on stderr`;

let opts;
try {
  opts = parseArgs({
    allowPositionals: true,
    options: {
      hcse: { type: 'string', default: 'http://127.0.0.1:8080/cse-in' },
      origin: { type: 'string', default: 'Catrest-get' },
      tef: { type: 'string' },
      key: { type: 'string' },
      output: { type: 'string', short: 'o' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  console.error(`atrest-get.mjs: ${e.message}\n${USAGE}`);
  process.exit(EXIT.USAGE);
}
if (opts.values.help) {
  console.log(USAGE);
  process.exit(0);
}
const o = opts.values;
if (opts.positionals.length !== 1 || (!o.tef && !o.key) || (o.tef && o.key)) {
  console.error(USAGE);
  process.exit(EXIT.USAGE);
}

const step = (n, msg) => o.verbose && process.stderr.write(`step ${n}: ${msg}\n`);

// ---- the HCSE (TS-0009 HTTP binding) ---------------------------------------

const base = o.hcse.replace(/\/+$/, '');
const baseRn = base.slice(base.lastIndexOf('/') + 1);
// "/cse-in/ae/cnt", "cse-in/ae/cnt" and "ae/cnt" name the same resource
let path = opts.positionals[0].replace(/^\/+/, '');
if (path === baseRn || path.startsWith(baseRn + '/')) path = path.slice(baseRn.length);
path = path.replace(/^\/+/, '');
let rqi = 0;

async function hcse(p, query = '') {
  const url = `${base}/${p}${query ? '?' + query : ''}`;
  let res;
  try {
    res = await fetch(url, {
      headers: { 'X-M2M-Origin': o.origin, 'X-M2M-RI': `node-${process.pid}-${++rqi}`, 'X-M2M-RVI': '3', Accept: 'application/json' },
    });
  } catch (e) {
    throw new Failure(EXIT.UNREACHABLE, `HCSE ${base} unreachable: ${e.cause?.code ?? e.message}`);
  }
  const rsc = Number(res.headers.get('X-M2M-RSC') ?? 0);
  const body = await res.text();
  if (rsc === 4103 || rsc === 4106 || res.status === 403)
    throw new Failure(EXIT.HCSE_DENIED, `HCSE denied retrieval of '${p}' to '${o.origin}' (RSC ${rsc})`);
  if (rsc === 4004 || res.status === 404) throw new Failure(EXIT.NOT_FOUND, `no resource '${p}' on the HCSE (RSC ${rsc})`);
  if (!res.ok) throw new Failure(EXIT.ERROR, `HCSE error on '${p}': HTTP ${res.status} (RSC ${rsc})`);
  const json = JSON.parse(body);
  const keys = Object.keys(json);
  if (keys.length !== 1 || !keys[0].startsWith('m2m:')) throw new Failure(EXIT.ERROR, `unexpected answer for '${p}'`);
  return { kind: keys[0], res: json[keys[0]], rsc };
}

async function cinContent(p) {
  const { kind, res } = await hcse(p);
  if (kind !== 'm2m:cin' || typeof res.con !== 'string') throw new Failure(EXIT.NOT_FOUND, `'${p}' is not a contentInstance`);
  return res.con;
}

// ---- the TEF (docs/TEF-API.md: GET /keys/<relativeKeyID>) -------------------

function tefRetrieve(socketPath, kid) {
  // Credential-Id = <relativeKeyID>@<fqdn> (TS-0003 10.3.5)
  const rkid = kid.split('@')[0];
  if (!/^[0-9a-f]{32}$/.test(rkid)) return Promise.reject(new Failure(EXIT.VERIFY, `kid '${kid}' is not a Credential-Id`));
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: `/keys/${rkid}`, method: 'GET', headers: { Host: 'tef' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const rsc = Number(res.headers['x-m2m-rsc'] ?? 0);
        let j = {};
        try {
          j = JSON.parse(body);
        } catch {
          // an error page without JSON: the status decides
        }
        if (res.statusCode === 200 && typeof j.keyValue === 'string') return resolve(j);
        if (j.reason === 'expired') return reject(new Failure(EXIT.EXPIRED, `the key registration '${kid}' has expired`));
        if ([403, 404, 429].includes(res.statusCode))
          return reject(new Failure(EXIT.TEF_DENIED, `TEF denied the key '${kid}' to this uid (RSC ${rsc})`));
        reject(new Failure(EXIT.ERROR, `TEF error for '${kid}': HTTP ${res.statusCode} (RSC ${rsc})`));
      });
    });
    req.on('error', (e) => reject(new Failure(EXIT.UNREACHABLE, `TEF ${socketPath} unreachable: ${e.code ?? e.message}`)));
    req.end();
  });
}

async function getKey(kid) {
  if (o.key) {
    step(15, 'no TEF: the key was given on the command line');
    return { key: base64url.decode(o.key), minVersion: 0 };
  }
  step(15, `secure channel with the TEF: Unix socket ${o.tef} (uid ${process.getuid()})`);
  step(16, `requesting the credential for '${kid}'`);
  const reg = await tefRetrieve(o.tef, kid);
  step(17, `the TEF authorised this uid for '${kid}'`);
  const key = base64url.decode(reg.keyValue);
  step(18, `received a ${key.length}-byte key, recorded version ${reg.atrestVersion ?? 0}`);
  return { key, minVersion: Number(reg.atrestVersion ?? 0) };
}

// ---- opening one object (docs/FORMAT.md 3, 4, 7) ------------------------------

function isInt(v) {
  return Number.isSafeInteger(v) && v >= 0 && v <= MAX_NUMBER;
}

// Verifies a compact JWE (dir + A256GCM) or JWS (HS256) under key, expecting kid.
async function open(compact, key, kid) {
  const parts = compact.split('.');
  let plain, header;
  try {
    if (parts.length === 5) {
      ({ plaintext: plain, protectedHeader: header } = await compactDecrypt(compact, key, {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      }));
    } else if (parts.length === 3) {
      ({ payload: plain, protectedHeader: header } = await compactVerify(compact, key, { algorithms: ['HS256'] }));
    } else throw new Failure(EXIT.VERIFY, 'not compact JOSE');
  } catch (e) {
    if (e instanceof Failure) throw e;
    const h = (() => {
      try {
        return decodeProtectedHeader(compact);
      } catch {
        return {};
      }
    })();
    if (h.enc === 'XC20P') throw new Failure(EXIT.ERROR, 'XC20P objects cannot be opened with jose (no XChaCha20-Poly1305)');
    throw new Failure(EXIT.VERIFY, `verification failed: ${e.code ?? e.message}`);
  }
  if (header.kid !== kid) throw new Failure(EXIT.VERIFY, `kid '${header.kid}' differs from the expected '${kid}'`);
  return { plain, header };
}

// The authenticated "atrest" member must say where the object belongs (FORMAT.md 5, 7 steps 4-7).
function checkBinding(header, want, what) {
  const a = header.atrest;
  if (!a || typeof a !== 'object' || a.v !== 1) throw new Failure(EXIT.VERIFY, `${what}: no atrest member`);
  for (const [k, v] of Object.entries(want))
    if (a[k] !== v) throw new Failure(EXIT.VERIFY, `${what}: atrest.${k} is ${JSON.stringify(a[k])}, expected ${JSON.stringify(v)}`);
}

// FORMAT.md 6: the manifest body and its invariants.
function parseManifest(plain, ver) {
  let m;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain));
  } catch {
    throw new Failure(EXIT.VERIFY, 'manifest: not JSON');
  }
  const bad = (why) => new Failure(EXIT.VERIFY, `manifest: ${why}`);
  if (m.v !== 1 || !isInt(m.version) || !isInt(m.length) || !isInt(m.segmentSize)) throw bad('bad members');
  if (m.version !== ver) throw bad(`version ${m.version} differs from the header's ${ver}`);
  if (m.segmentSize < SEGMENT_SIZE_MIN || m.segmentSize > SEGMENT_SIZE_MAX) throw bad('segment size out of range');
  const n = Math.ceil(m.length / m.segmentSize);
  if (!Array.isArray(m.segments) || m.segments.length !== n) throw bad('segment count does not match the length');
  m.segments.forEach((s, i) => {
    const last = i === n - 1;
    const len = last ? m.length - (n - 1) * m.segmentSize : m.segmentSize;
    if (!Array.isArray(s) || s.length !== 3 || s[0] !== i || !isInt(s[1]) || s[1] > m.version || s[2] !== len)
      throw bad(`segment entry ${i} is inconsistent`);
  });
  return m;
}

// ---- output ----------------------------------------------------------------

function openOutput() {
  if (!o.output || o.output === '-') return { write: (b) => writeFd(1, b), done: () => {}, abort: () => {} };
  const tmp = `${o.output}.atrest-get-node.${process.pid}`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  return {
    write: (b) => writeFd(fd, b),
    done: () => {
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, o.output);
    },
    abort: () => {
      fs.closeSync(fd);
      fs.unlinkSync(tmp);
    },
  };
}

function writeFd(fd, buf) {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
}

// ---- the two kinds of resources --------------------------------------------

async function getFile(p, cnt) {
  const label = (k) => (cnt.lbl ?? []).find((l) => l.startsWith(`atrest:${k}=`))?.slice(`atrest:${k}=`.length);
  const fid = label('fid');
  if (!fid) throw new Failure(EXIT.VERIFY, `'${p}' has no atrest:fid label`);
  // TS-0004 discovery: the contentInstances directly under the container
  const { res: uril } = await hcse(p, 'fu=1&ty=4&lvl=1');
  const list = Array.isArray(uril) ? uril : (uril['m2m:uril'] ?? uril);
  const versions = list.map((u) => u.slice(u.lastIndexOf('/') + 1)).filter((n) => /^m[0-9]+$/.test(n)).map((n) => Number(n.slice(1)));
  if (!versions.length) throw new Failure(EXIT.NOT_FOUND, `'${p}' holds no manifest`);
  const ver = Math.max(...versions);
  const mcon = await cinContent(`${p}/m${ver}`);
  const kid = decodeProtectedHeader(mcon).kid; // untrusted until verified
  if (typeof kid !== 'string') throw new Failure(EXIT.VERIFY, 'manifest without a kid');
  step(14, `received manifest '${p}/m${ver}' with Credential-Id '${kid}'`);

  const { key, minVersion } = await getKey(kid);
  const { plain, header } = await open(mcon, key, kid);
  checkBinding(header, { t: 'man', fid, ver }, 'manifest');
  const m = parseManifest(plain, ver);
  // DESIGN.md 4: the TEF's recorded version defeats a rolled-back manifest
  if (m.version < minVersion) throw new Failure(EXIT.VERIFY, `manifest version ${m.version} is older than the TEF's ${minVersion} (rolled back)`);
  step(19, `manifest verified: version ${m.version}, ${m.length} bytes in ${m.segments.length} segment(s)`);

  const out = openOutput();
  try {
    for (const [idx, gen, len] of m.segments) {
      let con;
      try {
        con = await cinContent(`${p}/s${idx}g${gen}`);
      } catch (e) {
        if (e.code === EXIT.NOT_FOUND) throw new Failure(EXIT.VERIFY, `segment ${idx} is missing (truncated)`);
        throw e;
      }
      const { plain: seg, header: h } = await open(con, key, kid);
      checkBinding(h, { t: 'seg', fid, idx, gen }, `segment ${idx}`);
      if (seg.length !== len) throw new Failure(EXIT.VERIFY, `segment ${idx} has ${seg.length} bytes, the manifest says ${len}`);
      out.write(seg);
    }
    out.done();
  } catch (e) {
    out.abort();
    throw e;
  }
  step(19, `every segment verified in order: ${m.length} bytes`);
}

async function getEsdata(p, cin) {
  if (typeof cin.con !== 'string') throw new Failure(EXIT.NOT_FOUND, `'${p}' has no content`);
  let kid;
  try {
    kid = decodeProtectedHeader(cin.con).kid;
  } catch {
    throw new Failure(EXIT.VERIFY, `'${p}' is not ESData`);
  }
  if (typeof kid !== 'string') throw new Failure(EXIT.VERIFY, `'${p}' has no kid`);
  step(14, `received ESData '${p}' with Credential-Id '${kid}'`);
  const { key } = await getKey(kid);
  const { plain } = await open(cin.con, key, kid);
  step(19, `verified: ${plain.length} bytes`);
  const out = openOutput();
  out.write(plain);
  out.done();
}

async function main() {
  step(11, `association with the HCSE ${base} as '${o.origin}'`);
  step(12, `retrieving '${path}'`);
  const { kind, res, rsc } = await hcse(path);
  step(13, `the HCSE authorised '${o.origin}' (RSC ${rsc})`);
  if (kind === 'm2m:cin') return getEsdata(path, res);
  if (kind === 'm2m:cnt' && (res.lbl ?? []).includes('atrest:file')) return getFile(path, res);
  if (kind === 'm2m:cnt') {
    const la = await hcse(`${path}/la`);
    return getEsdata(`${path}/la`, la.res);
  }
  throw new Failure(EXIT.NOT_FOUND, `'${path}' is not a file or ESData (${kind})`);
}

try {
  await main();
} catch (e) {
  console.error(`atrest-get.mjs: ${e.message}`);
  process.exit(e instanceof Failure ? e.code : EXIT.ERROR);
}
