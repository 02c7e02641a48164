"""Registering the service's search attributes, so the Temporal UI can filter rooms."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from telephony.contracts import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)


async def missing_search_attributes(client: Client) -> list[str]:
    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [key.name for key in SEARCH_ATTRIBUTES if key.name not in listing.custom_attributes]


async def ensure_search_attributes(client: Client) -> list[str]:
    """Add the keyword attributes that are missing; return the names added.

    Where the operator API is not allowed (Temporal Cloud with a namespace API key), the
    attributes must be created by an administrator; the worker warns and goes on.
    """
    names = [key.name for key in SEARCH_ATTRIBUTES]
    try:
        try:
            missing = await missing_search_attributes(client)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.UNIMPLEMENTED:
                raise
            missing = names  # servers without the listing (the test server) accept the add
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={
                        name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing
                    },
                )
            )
            log.info("registered search attributes %s", ", ".join(missing))
        return missing
    except RPCError as exc:
        if exc.status is RPCStatusCode.ALREADY_EXISTS:
            return []
        if exc.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            log.warning(
                "cannot register search attributes (%s); create %s as Keyword attributes",
                exc.message,
                ", ".join(names),
            )
            return []
        raise
