"""Telephony: the media workers (pjsua2), their message protocol, and the SIP front."""
