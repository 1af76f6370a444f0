"""The applications: the command line (one module per command under cli), predict, the
Analyzer, evaluation reports, annotation, distillation and the smile head."""
