"""`keymedic report`: support analytics from the tracker store and the KeyMedic database (docs/operating.md).

`data.build_report` computes the numbers, `render.render_html` draws them, `cli` is the command.
"""
