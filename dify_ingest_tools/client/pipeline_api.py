"""`PipelineAPI`: run a knowledge base's published pipeline (bodies and shapes: `pipelines`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools._http.answer_errors import shape_error
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.client.pipelines import PipelineDatasource, pipeline_run, pipeline_run_body
from dify_ingest_tools.models.created import PipelineRun


class PipelineAPI(ClientHost):
    """Knowledge pipelines: one run creates a batch of documents to wait on."""

    async def run_pipeline(
        self,
        dataset_id: str,
        datasource_type: PipelineDatasource,
        datasource_info_list: Iterable[Mapping[str, Any]],
        *,
        start_node_id: str,
        inputs: Mapping[str, Any] | None = None,
    ) -> PipelineRun:
        """Run a knowledge base's published pipeline (``POST /datasets/{id}/pipeline/run``).

        Dify creates one document per datasource item, all in one new batch, and runs the
        pipeline in its workers: wait on the returned run like on any batch
        (``wait_for_indexing(run.dataset_id, run.batch)``, or ``wait_for_batches([run])``).
        The published version runs (``is_published: true``), answered without streaming
        (``response_mode: "blocking"``): a draft run creates no batch to wait on. Sent once,
        never retried (a retry would create the documents again).

        A pipeline can finish a document ``completed`` with 0 chunks (nothing extracted):
        the wait reports it.

        Args:
            dataset_id: The knowledge base UUID (one created from a knowledge pipeline).
            datasource_type: ``"local_file"``, ``"online_document"``, ``"website_crawl"`` or
                ``"online_drive"``.
            datasource_info_list: The items, shaped per type: ``{"reference": <id from the
                pipeline file upload>, "name": ...}``, ``{"url": ..., "title": ...}``,
                ``{"workspace_id": ..., "page": {...}}``, ``{"id": ..., "type": "file"}``.
            start_node_id: The datasource node to start from (``GET
                /datasets/{id}/pipeline/datasource-plugins`` lists them).
            inputs: The pipeline's input variables (default ``{}``).

        Raises:
            ValueError: A malformed argument (nothing is sent).
            DifyAPIError: As Dify answered: 400 ``invalid_param`` (``Pipeline not found``: the
                knowledge base has no pipeline; or a body Dify refused), 403, 404
                ``Dataset not found.``, 500 ``pipeline_run_error``.
        """
        check_dataset_id(dataset_id)
        body = pipeline_run_body(datasource_type, datasource_info_list, start_node_id, inputs)
        url = self._url("datasets", dataset_id, "pipeline", "run")
        payload = await self._transport.json("POST", url, json_body=body, idempotent=False)
        try:
            return pipeline_run(dataset_id, payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise shape_error(
                f"expected {{'batch': ..., 'documents': [...]}} ({type(exc).__name__})",
                payload,
                url,
                "POST",
            ) from None
