"""Portvakt: one OpenID Connect Provider in front of Swedish e-ID providers."""
