"""The tool set (definitions, answers, the readiness gate) and the store core of the stores."""
