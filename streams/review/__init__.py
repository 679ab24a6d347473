"""Case review: the papers'-style timeline figure per patient (`crswatch report`), changed thresholds over a
cohort (`crswatch whatif`) and lead time of alerts against the clinicians' own escalation.

Pure modules (no I/O, import only `models` and `alerts`): `series` (figure data, downsampling), `leadtime`,
`whatif`. I/O: `run` (replays files through `streams.replay.Replayer`), `figure` (plotly, matplotlib),
`report` (HTML pages), `cli` (the subcommands).
"""
