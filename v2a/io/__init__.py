"""The I/O layer every stage reads and writes through: the run layout and one typed reader per table.

`layout` names every location under a pipeline's OUT; `parquet` reads and writes tables with column
projection, file and row-group pruning and content-keyed part files; `clips`, `embeddings`,
`generations` and `results` are the typed readers the stages use.
"""
