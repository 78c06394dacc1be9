"""Bytes to text: NUL -> binary, UTF-8 first, then charset detection, else undecodable."""

from __future__ import annotations

import random

import pytest

from stackcoder.data.readers.decoding import BINARY, UNDECODABLE, decode, iana_name

LATIN1_SOURCE = (
    "# -*- coding: latin-1 -*-\n"
    "# Fichier de configuration générale: paramètres par défaut\n"
    "# Auteur: François Lefèvre\n\n"
    "def créer():\n"
    '    """Crée un élément à la première étape."""\n'
    "    return 'déjà terminé'\n"
)


def test_utf8_first():
    assert decode("naïve — ok\n".encode()) == ("naïve — ok\n", "UTF-8", None)


def test_nul_byte_is_binary_even_when_valid_utf8():
    assert decode(b"abc\0def") == ("", None, BINARY)


def test_latin1_is_decoded_by_charset_detection():
    text, encoding, reason = decode(LATIN1_SOURCE.encode("latin-1"))
    assert reason is None
    assert text == LATIN1_SOURCE
    assert encoding == "ISO-8859-1"


def test_no_detection_means_undecodable():
    assert decode(LATIN1_SOURCE.encode("latin-1"), charset_detection=False) == ("", None, UNDECODABLE)


def test_random_bytes_are_undecodable():
    rng = random.Random(0)
    data = bytes(rng.randrange(1, 256) for _ in range(4000))  # no NUL: not "binary"
    assert decode(data) == ("", None, UNDECODABLE)


@pytest.mark.parametrize(
    "codec, name",
    [
        ("cp1252", "windows-1252"),
        ("iso8859_2", "ISO-8859-2"),
        ("latin_1", "ISO-8859-1"),
        ("utf_16", "UTF-16"),
    ],
)
def test_iana_names(codec, name):
    assert iana_name(codec) == name
