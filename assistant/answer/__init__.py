"""Answer generation: backends that write an answer from numbered passages, and the
citation checker every answer passes through."""
