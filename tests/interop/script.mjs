// An unmodified openid-client (v6) logging in to Portvakt, driven by
// tests/interop/test_openid_client.py:
//
//   node script.mjs MODE DISCOVERY_URL CLIENT_ID CREDENTIAL REDIRECT_URI
//
// MODE is "jar" (a signed request object, buildAuthorizationUrlWithJAR), "jar-sign" (the
// same, asking for a signature: the Signature Extension's signRequest as a member of the
// signed object, SIGN_REQUEST in the environment) or "par" (buildAuthorizationUrlWithPAR). CREDENTIAL is a private JWK as JSON (private_key_jwt at
// the token endpoint; with "jar" it also signs the request object) or a client secret
// (client_secret_basic). The script prints the authorization URL, reads the callback URL the
// browser reached from standard input, redeems the code and prints the ID token's claims.
import * as client from "openid-client";
import { createInterface } from "node:readline";

const [mode, discoveryUrl, clientId, credential, redirectUri] = process.argv.slice(2);

async function privateKey(jwk) {
  const algorithm = jwk.kty === "EC"
    ? { name: "ECDSA", namedCurve: jwk.crv }
    : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const key = await crypto.subtle.importKey("jwk", jwk, algorithm, false, ["sign"]);
  return { key, kid: jwk.kid };
}

async function firstLine() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  throw new Error("no callback URL on standard input");
}

const signing = credential.startsWith("{") ? await privateKey(JSON.parse(credential)) : null;
const authentication = signing ? client.PrivateKeyJwt(signing) : client.ClientSecretBasic(credential);
const config = await client.discovery(new URL(discoveryUrl), clientId, undefined, authentication);

const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const parameters = {
  redirect_uri: redirectUri,
  scope: "openid https://id.oidc.se/scope/naturalPersonNumber",
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: "S256",
  state,
  nonce,
};
if (mode === "jar-sign") {
  parameters.scope += " https://id.oidc.se/scope/sign";
  parameters.prompt = "login consent";
  parameters["https://id.oidc.se/param/signRequest"] = process.env.SIGN_REQUEST;
}
const url = mode.startsWith("jar")
  ? await client.buildAuthorizationUrlWithJAR(config, parameters, signing)
  : await client.buildAuthorizationUrlWithPAR(config, parameters);
console.log(url.href);

const callback = new URL(await firstLine());
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
});
console.log(JSON.stringify(tokens.claims()));
