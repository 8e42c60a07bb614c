"""Exchange with partners: STIX 2.1 bundles, the TAXII 2.1 server and client, privacy-preserving matching
and the UNODC formats.

Everything that leaves the node goes through the sharing policy first (``narcotrack.access.policy``):
an export is always made *for* someone, a user of this node or a partner organisation, and holds only
what that caller may see.
"""
