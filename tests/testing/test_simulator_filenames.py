"""create-by-file names: read as Werkzeug reads them, stored as Dify 1.14.1 stored them (11)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dify_ingest_tools.testing._disposition import parse_options_header

from .helpers import ECONOMY_DATA, RECORDED, Api, Reply

RECORDING = json.loads((RECORDED / "11_filename_encoding.json").read_text(encoding="utf-8"))
#: Every create of recording 11, by case name.
CREATES = {
    name: case
    for name, case in RECORDING.items()
    if isinstance(case, dict) and "multipart_part_headers" in case.get("request", {})
}


async def upload_with_disposition(
    api: Api, dataset_id: str, disposition: bytes, content: bytes = b"hello notes"
) -> Reply:
    """POST create-by-file whose file part carries this exact Content-Disposition line."""
    boundary = b"sim-boundary-7d24"
    body = b"".join(
        [
            b"--" + boundary + b"\r\n" + disposition + b"\r\n",
            b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n",
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="data"\r\n\r\n',
            ECONOMY_DATA.encode() + b"\r\n--" + boundary + b"--\r\n",
        ]
    )
    return await api.post(
        f"/v1/datasets/{dataset_id}/document/create-by-file",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
    )


def test_recording_11_has_every_encoding() -> None:
    assert len(CREATES) == 7


@pytest.mark.parametrize("case", sorted(CREATES))
async def test_each_recorded_encoding_stores_the_name_dify_stored(
    api: Api, dataset_id: str, case: str
) -> None:
    recorded: dict[str, Any] = CREATES[case]
    line = recorded["request"]["multipart_part_headers"]["file"]
    reply = await upload_with_disposition(api, dataset_id, line.encode("utf-8"))
    assert reply.status == recorded["response"]["status"] == 200, reply.text
    expected = recorded["response"]["body"]["document"]
    document = reply.json["document"]
    assert document["name"] == expected["name"]
    upload = document["data_source_detail_dict"]["upload_file"]
    assert upload["name"] == expected["data_source_detail_dict"]["upload_file"]["name"]
    assert upload["extension"] == "txt"
    detail = await api.get(f"/v1/datasets/{dataset_id}/documents/{document['id']}")
    assert detail.json["name"] == expected["name"]


@pytest.mark.parametrize("case", [name for name in RECORDING if name.startswith("list_keyword_")])
async def test_the_list_keyword_matches_stored_names_literally(
    api: Api, dataset_id: str, case: str
) -> None:
    for setup in ("list_setup_create_percent_encoded", "list_setup_create_raw_utf8"):
        line = CREATES[setup]["request"]["multipart_part_headers"]["file"]
        assert (await upload_with_disposition(api, dataset_id, line.encode())).status == 200
    recorded = RECORDING[case]
    path = recorded["request"]["path"].replace(
        recorded["request"]["path"].split("/")[3], dataset_id
    )
    reply = await api.get(path, encoded=True)
    names = [item["name"] for item in reply.json["data"]]
    assert names == [item["name"] for item in recorded["response"]["body"]["data"]]


@pytest.mark.parametrize(
    "disposition",
    [
        b'form-data; name="file"; filename="say \\"hi\\".txt"',  # HTTP's backslash escape
        b'form-data; name="file"; filename="say %22hi%22.txt"',  # the HTML form escape
        b'form-data; name="file"; filename="a\\\\b.txt"',
        b'form-data; name="file"; filename="dir/notes.txt"',
        b"form-data; name=\"file\"; filename*=UTF-8''what%3F.txt",
    ],
)
async def test_names_dify_refuses_are_refused_after_unescaping(
    api: Api, dataset_id: str, disposition: bytes
) -> None:
    reply = await upload_with_disposition(api, dataset_id, b"Content-Disposition: " + disposition)
    assert reply.status == 400
    assert reply.json == {
        "code": "invalid_param",
        "message": "Filename contains invalid characters",
        "status": 400,
    }


async def test_a_part_header_that_is_not_utf8_loses_the_whole_form(
    api: Api, dataset_id: str
) -> None:
    line = b'Content-Disposition: form-data; name="file"; filename="r\xe9sum\xe9.txt"'
    reply = await upload_with_disposition(api, dataset_id, line)
    assert reply.json["code"] == "no_file_uploaded"


async def test_a_long_file_name_is_cut_before_its_first_dot(api: Api, dataset_id: str) -> None:
    name = "report.v2." + "x" * 200 + ".txt"
    line = f'Content-Disposition: form-data; name="file"; filename="{name}"'
    reply = await upload_with_disposition(api, dataset_id, line.encode())
    assert reply.json["document"]["name"] == "report.txt"


async def test_a_long_text_name_keeps_its_first_200_characters(api: Api, dataset_id: str) -> None:
    created = await api.create_text(dataset_id, "n" * 250, "alpha")
    assert created["document"]["name"] == "n" * 200


async def test_a_text_document_and_a_file_of_the_same_name_are_one_document(
    api: Api, dataset_id: str
) -> None:
    text = await api.create_text(dataset_id, "my notes résumé.txt", "alpha")
    line = 'Content-Disposition: form-data; name="file"; filename="my notes résumé.txt"'
    file = await upload_with_disposition(api, dataset_id, line.encode())
    assert file.json["document"]["id"] == text["document"]["id"]
    assert file.json["batch"] != text["batch"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('form-data; name="file"; filename="a b.txt"', {"name": "file", "filename": "a b.txt"}),
        ('form-data; name=file; filename="%41.txt"', {"name": "file", "filename": "%41.txt"}),
        ("form-data; filename*=UTF-8''%41.txt", {"filename": "A.txt"}),
        ("form-data; filename*=utf-8'en'%E2%82%AC.txt", {"filename": "€.txt"}),
        ("form-data; filename*=ISO-8859-1''%E9.txt", {"filename": "é.txt"}),
        # An unknown charset leaves the value as sent.
        ("form-data; filename*=KOI8-R''%C1.txt", {"filename": "%C1.txt"}),
        # The later parameter wins, whichever form each has.
        ("form-data; filename=\"x.txt\"; filename*=UTF-8''y.txt", {"filename": "y.txt"}),
        ("form-data; filename*=UTF-8''y.txt; filename=\"x.txt\"", {"filename": "x.txt"}),
        # RFC 2231 continuations join; a later part keeps the earlier charset.
        (
            "form-data; filename*0*=UTF-8''%C3%A9; filename*1*=t%C3%A9.txt",
            {"filename": "été.txt"},
        ),
        ('form-data; filename*0="a "; filename*1="b.txt"', {"filename": "a b.txt"}),
        # Quote escapes: backslashes (HTTP) and %22 (HTML forms).
        ('form-data; filename="a\\"b%22c\\\\d"', {"filename": 'a"b"c\\d'}),
        # A bare (unquoted) value ends at the first character outside the token set.
        ("form-data; filename=résumé.txt", {"filename": "r"}),
        # Malformed parts are skipped, the rest is read.
        ('form-data; junk; =x; filename="ok.txt"; name', {"filename": "ok.txt"}),
        ('form-data; name="file"; filename="unterminated', {"name": "file"}),
        # A quoted value runs to the next unescaped quote, semicolons and all.
        ('form-data; filename="a; name="b"', {"filename": "a; name="}),
        ("form-data", {}),
        ("", {}),
    ],
)
def test_parameters_are_read_as_werkzeug_reads_them(header: str, expected: dict[str, str]) -> None:
    assert parse_options_header(header)[1] == expected


def test_no_header_is_no_parameters() -> None:
    assert parse_options_header(None) == ("", {})
    assert parse_options_header('Form-Data; NAME="x"') == ("Form-Data", {"name": "x"})
