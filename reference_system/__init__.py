"""The reference 一码通 health-code system: the system under test (see README.md).

Entry points: ``python -m reference_system.app`` (an API worker),
``python -m reference_system.gateway`` (nginx), ``python -m reference_system.seed``;
``reference_system.tokens.verify`` for offline gates. It never imports the harness.
"""
