"""Tools around the rules and the host: formatter, explainer, reference, doctor, demos."""
