"""Resync of a wallet's history from its exchange (DESIGN §5): `source` (the `HistorySource` protocol and the
adapter seam), `runner` (stage, then merge in one transaction). Tests fake a source with
`tests.support.sync.FakeHistorySource`.
"""
