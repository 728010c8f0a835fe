"""Concept types from word lists and name shapes, in several languages."""

from __future__ import annotations

import pytest

from osmose.services.extractor.typing_rules import concept_type
from osmose.v1 import document_pb2 as pb

STANDARD, TOOL, ROLE = pb.CONCEPT_TYPE_STANDARD, pb.CONCEPT_TYPE_TOOL, pb.CONCEPT_TYPE_ROLE
PRACTICE, ENTITY, TOPIC = pb.CONCEPT_TYPE_PRACTICE, pb.CONCEPT_TYPE_ENTITY, pb.CONCEPT_TYPE_TOPIC


@pytest.mark.parametrize(
    ("name", "language", "aliases", "methods", "expected"),
    [
        ("ISO/IEC 27001", "en", (), (), STANDARD),
        ("RFC 9110", "en", (), (), STANDARD),
        ("NIST SP 800-53", "en", (), (), STANDARD),
        ("OWASP Top 10", "en", (), (), STANDARD),
        ("HTTP", "en", (), (), STANDARD),
        ("OAuth 2.0", "en", (), (), STANDARD),
        ("PCI DSS", "en", (), (), STANDARD),
        ("General Data Protection Regulation", "en", ("GDPR",), ("acronym",), STANDARD),
        ("Règlement général sur la protection des données", "fr", ("RGPD",), ("acronym",), STANDARD),
        ("SQL Server 2019", "en", (), (), TOOL),
        ("Azure Data Studio", "en", (), ("capitalised",), TOOL),
        ("Python 3.11", "en", (), (), TOOL),
        ("GitHub", "en", (), ("capitalised",), TOOL),
        ("Android SDK", "en", (), (), TOOL),
        ("Microsoft Teams", "en", (), (), TOOL),
        ("password manager", "en", (), (), TOOL),
        ("developers", "en", (), (), ROLE),
        ("Product Owner", "en", (), ("capitalised",), ROLE),
        ("attacker", "en", (), (), ROLE),
        ("database administrator", "en", (), (), ROLE),
        ("Chief Information Security Officer", "en", ("CISO",), ("acronym",), ROLE),
        ("chef de projet", "fr", (), (), ROLE),
        ("Softwareentwickler", "de", (), (), ROLE),
        ("desarrolladores", "es", (), (), ROLE),
        ("разработчики", "ru", (), (), ROLE),
        ("unit testing", "en", (), (), PRACTICE),
        ("code review", "en", (), (), PRACTICE),
        ("encryption", "en", (), (), PRACTICE),
        ("DevOps", "en", (), ("capitalised",), PRACTICE),
        ("revue de code", "fr", (), (), PRACTICE),
        ("Verschlüsselung", "de", (), (), PRACTICE),
        ("validação de entrada", "pt", (), (), PRACTICE),
        ("шифрование данных", "ru", (), (), PRACTICE),
        ("Bank of America", "en", (), ("capitalised",), ENTITY),
        ("Linux Foundation", "en", (), (), ENTITY),
        ("Microsoft", "en", (), (), ENTITY),
        ("user interface", "en", (), (), TOPIC),
        ("interface utilisateur", "fr", (), (), TOPIC),
        ("SQL injection", "en", (), (), TOPIC),
        ("Anwendung", "de", (), (), TOPIC),
        ("Key Performance Indicator", "en", ("KPI",), ("acronym",), TOPIC),
    ],
)
def test_concept_type(name: str, language: str, aliases: tuple[str, ...], methods: tuple[str, ...],
                      expected: int) -> None:
    got = concept_type(name, language=language, aliases=aliases, methods=methods)
    assert got == expected, f"{name}: {pb.ConceptType.Name(got)} != {pb.ConceptType.Name(expected)}"
