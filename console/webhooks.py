"""Webhooks (placeholder until the webhooks branch lands)."""


def emit(*, product, event: str, data: dict) -> list:
    return []
