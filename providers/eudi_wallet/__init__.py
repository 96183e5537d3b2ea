"""The EU Digital Identity Wallet as an e-legitimation: an OpenID4VP 1.0 verifier, as profiled
by HAIP 1.0, of the PID in SD-JWT VC format (shared/reference/eudi-wallet-rp.md).

One module per job:
- `config.py`: the `type: eudi_wallet` entry.
- `errors.py`: why a presentation is refused (the provider maps each to the citizen's message).
- `pid.py`: what a verified presentation gives, and what it is checked against.
- `trust.py`: the configured trust list of PID providers; X.509 path validation to it.
- `sd_jwt.py`, `presentation.py`: SD-JWT (RFC 9901) and the SD-JWT VC + KB-JWT check.
- `status_list.py`: Token Status List, fetched, checked and cached.
- `claims.py`: a verified PID as an `Identity` (names, personnummer or prid, eIDAS high).
- `request_object.py`, `response.py`, `transactions.py`, `provider.py`, `wait_page.py`: the
  OpenID4VP protocol (signed request object, encrypted `direct_post.jwt` response, same-device
  and cross-device flows) and the citizen's page.
- `simulator*.py`: a test wallet and test PID issuer for the sandbox and the demo; refused in
  production.
"""
