// Verifies clients/testvectors/vectors.json with Node's built-in crypto only (no package):
// RFC 9421 request and response signatures (Ed25519) and Content-Digest, the manifest's
// compact JWS (Ed25519), and the RFC 9180 HPKE sealed value (X25519, HKDF-SHA256, AES-256-GCM).
// Everything is rebuilt from the message parts; the vectors' own signature bases are only
// compared with what this file builds. Usage: node check.mjs [vectors.json]. Exit 0: all pass.
import { createHash, createHmac, createPrivateKey, createPublicKey, createDecipheriv, diffieHellman, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? new URL("./vectors.json", import.meta.url);
const v = JSON.parse(readFileSync(file, "utf8"));
const hex = (s) => Buffer.from(s, "hex");
const b64u = (s) => Buffer.from(s, "base64url");
const failures = [];
const check = (name, ok) => { if (!ok) failures.push(name); console.log(`${ok ? "ok  " : "FAIL"} ${name}`); };

// Raw 32-byte keys as KeyObjects (PKCS#8 / SPKI prefixes of RFC 8410).
const PKCS8 = { ed25519: "302e020100300506032b657004220420", x25519: "302e020100300506032b656e04220420" };
const SPKI = { ed25519: "302a300506032b6570032100", x25519: "302a300506032b656e032100" };
const privateKey = (kind, raw) => createPrivateKey({ key: Buffer.concat([hex(PKCS8[kind]), raw]), format: "der", type: "pkcs8" });
const publicKey = (kind, raw) => createPublicKey({ key: Buffer.concat([hex(SPKI[kind]), raw]), format: "der", type: "spki" });
const hubKeys = Object.fromEntries(v.keys.hub_jwks.keys.map((k) => [k.kid, publicKey("ed25519", b64u(k.x))]));

// RFC 9421: a Signature-Input member "label=(c1 c2 ...);params" and its Signature "label=:b64:".
function parseSignature(input, signature) {
  const m = /^([a-z*][a-z0-9_\-.*]*)=(\((.*?)\)(;.*))$/.exec(input);
  const s = /^([a-z*][a-z0-9_\-.*]*)=:([A-Za-z0-9+/=]+):$/.exec(signature);
  if (!m || !s || m[1] !== s[1]) throw new Error("not a single-label signature");
  const components = m[3].match(/"[^"]+"(;req)?/g) ?? [];
  const params = Object.fromEntries([...m[4].matchAll(/;([a-z]+)=("([^"]*)"|(-?\d+))/g)].map((p) => [p[1], p[3] ?? Number(p[4])]));
  return { components, params, serialised: m[2], signature: Buffer.from(s[2], "base64") };
}
function signatureBase(sig, resolve) {
  return [...sig.components.map((c) => `${c}: ${resolve(c)}`), `"@signature-params": ${sig.serialised}`].join("\n");
}

// 1. The consumer's request.
{
  const r = v.signed_request, url = new URL(r.url);
  const sig = parseSignature(r.headers["Signature-Input"], r.headers.Signature);
  const derived = { '"@method"': r.method, '"@authority"': url.host, '"@path"': url.pathname, '"@query"': url.search || "?" };
  const base = signatureBase(sig, (c) => derived[c]);
  check("request: signature base as documented", base === r.signature_base);
  check("request: covers @method @authority @path @query", ["@method", "@authority", "@path", "@query"].every((c) => sig.components.includes(`"${c}"`)));
  check("request: alg ed25519, keyid, created, nonce", sig.params.alg === "ed25519" && sig.params.keyid === v.keys.consumer_ed25519.kid && Number.isInteger(sig.params.created) && !!sig.params.nonce);
  check("request: Ed25519 signature verifies", verify(null, Buffer.from(base), publicKey("ed25519", hex(v.keys.consumer_ed25519.public_hex)), sig.signature));
  check("request: a changed query does not verify", !verify(null, Buffer.from(base.replace("limit=100", "limit=101")), publicKey("ed25519", hex(v.keys.consumer_ed25519.public_hex)), sig.signature));
}

// 2. The hub's response, bound to that request.
{
  const r = v.signed_response, headers = Object.fromEntries(Object.entries(r.headers).map(([k, x]) => [k.toLowerCase(), x]));
  const digest = "sha-256=:" + createHash("sha256").update(r.body, "utf8").digest("base64") + ":";
  check("response: Content-Digest matches the body", headers["content-digest"] === digest);
  const sig = parseSignature(headers["signature-input"], headers.signature);
  const required = ['"content-digest"', '"@status"', '"content-type"', '"signature";req', ...Object.keys(headers).filter((h) => h.startsWith("neuron-")).map((h) => `"${h}"`)];
  check("response: covers digest, status, type, Neuron-* and the request's signature", required.every((c) => sig.components.includes(c)));
  const resolve = (c) => c === '"@status"' ? String(r.status) : c === '"signature";req' ? r.request_signature : headers[c.slice(1, -1)];
  const base = signatureBase(sig, resolve);
  check("response: signature base as documented", base === r.signature_base);
  check("response: Ed25519 signature verifies with the hub's JWKS key", verify(null, Buffer.from(base), hubKeys[sig.params.keyid], sig.signature));
  check("response: bound to its request (another request signature fails)", !verify(null, Buffer.from(signatureBase(sig, (c) => c === '"signature";req' ? "neuron=:AAAA:" : resolve(c))), hubKeys[sig.params.keyid], sig.signature));
}

// 3. The manifest's compact JWS.
{
  const [h, p, s] = v.manifest_jws.token.split(".");
  const header = JSON.parse(b64u(h).toString("utf8"));
  check("manifest: alg Ed25519 and a JWKS kid", header.alg === "Ed25519" && header.kid in hubKeys);
  check("manifest: JWS signature verifies", verify(null, Buffer.from(`${h}.${p}`), hubKeys[header.kid], b64u(s)));
  check("manifest: payload is the canonical JSON of the manifest", b64u(p).toString("utf8") === v.manifest_jws.payload_canonical
    && JSON.stringify(JSON.parse(b64u(p).toString("utf8"))) === JSON.stringify(JSON.parse(v.manifest_jws.payload_canonical)));
}

// 4. The HPKE-sealed value (RFC 9180 §4-§7, written out from the RFC).
{
  const x = v.hpke_sealed;
  const i2osp = (n, w) => { const b = Buffer.alloc(w); b.writeUIntBE(n, 0, w); return b; };
  const extract = (salt, ikm) => createHmac("sha256", salt.length ? salt : Buffer.alloc(32)).update(ikm).digest();
  const expand = (prk, info, len) => {
    let out = Buffer.alloc(0), t = Buffer.alloc(0);
    for (let i = 1; out.length < len; i++) { t = createHmac("sha256", prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest(); out = Buffer.concat([out, t]); }
    return out.subarray(0, len);
  };
  const V1 = Buffer.from("HPKE-v1");
  const labeledExtract = (sid, salt, label, ikm) => extract(salt, Buffer.concat([V1, sid, Buffer.from(label), ikm]));
  const labeledExpand = (sid, prk, label, info, len) => expand(prk, Buffer.concat([i2osp(len, 2), V1, sid, Buffer.from(label), info]), len);
  const KEM = Buffer.concat([Buffer.from("KEM"), i2osp(0x20, 2)]);
  const SUITE = Buffer.concat([Buffer.from("HPKE"), i2osp(0x20, 2), i2osp(1, 2), i2osp(2, 2)]);
  const [prefix, keyId, body] = x.token.split(".");
  const blob = b64u(body), enc = blob.subarray(0, 32), ct = blob.subarray(32);
  check("hpke: token is nhs2.<key id>.<enc ‖ ct>", prefix === "nhs2" && keyId === x.key_id && enc.equals(hex(x.enc_hex)) && ct.equals(hex(x.ct_hex)));
  const info = Buffer.from(["neuron-hub/seal/v2", x.consumer, x.feed, x.field, x.key_id].join("\x1f"), "utf8");
  check("hpke: info is label, consumer, feed, field, key id", info.equals(hex(x.info_hex)));
  // DeriveKeyPair(ikm_e) gives the ephemeral key whose public half is enc (deterministic sealing).
  const skE = labeledExpand(KEM, labeledExtract(KEM, Buffer.alloc(0), "dkp_prk", hex(x.ikm_e_hex)), "sk", Buffer.alloc(0), 32);
  const pkE = createPublicKey(privateKey("x25519", skE)).export({ format: "der", type: "spki" }).subarray(-32);
  check("hpke: DeriveKeyPair(ikm_e) gives enc", pkE.equals(enc));
  // Decap with the recipient's private key, then the key schedule (mode base) and AES-256-GCM.
  const skR = privateKey("x25519", hex(v.keys.public_security_x25519.private_hex));
  const pkR = hex(v.keys.public_security_x25519.public_hex);
  const dh = diffieHellman({ privateKey: skR, publicKey: publicKey("x25519", enc) });
  const shared = labeledExpand(KEM, labeledExtract(KEM, Buffer.alloc(0), "eae_prk", dh), "shared_secret", Buffer.concat([enc, pkR]), 32);
  const context = Buffer.concat([Buffer.from([0]), labeledExtract(SUITE, Buffer.alloc(0), "psk_id_hash", Buffer.alloc(0)), labeledExtract(SUITE, Buffer.alloc(0), "info_hash", info)]);
  const secret = labeledExtract(SUITE, shared, "secret", Buffer.alloc(0));
  const key = labeledExpand(SUITE, secret, "key", context, 32), nonce = labeledExpand(SUITE, secret, "base_nonce", context, 12);
  let plain = null;
  try {
    const d = createDecipheriv("aes-256-gcm", key, nonce);
    d.setAAD(hex(x.aad_hex));
    d.setAuthTag(ct.subarray(ct.length - 16));
    plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString("utf8");
  } catch (e) { plain = null; }
  check("hpke: opens to the plaintext with the recipient's key", plain === x.plaintext);
}

if (failures.length) { console.log(`${failures.length} failed`); process.exit(1); }
console.log("all test vectors verify");
