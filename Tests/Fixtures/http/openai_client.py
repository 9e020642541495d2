"""The official `openai` Python package as a client of `llmos serve --http`, for llmos's
tests: it lists the models, makes each chat completion of a scenario (streamed or not)
and reports what it saw as one JSON object on stdout.

    python openai_client.py --base-url http://127.0.0.1:PORT/v1 --api-key KEY < scenario.json

The scenario: {"requests": [{"model", "messages", "stream"?, "max_tokens"?}, ...]}. Each
report entry is {"content", "finish_reason", "usage", "id", "model", "llmos"} (streamed:
the content joined from the deltas, "chunks" their count, "tool_events" the llmos events)
or {"error": {"type", "status", "message", "code"}}.
"""
import argparse
import json
import sys
from importlib.metadata import version

import openai


def error_report(exc):
    body = getattr(exc, "body", None)
    return {
        "type": type(exc).__name__,
        "status": getattr(exc, "status_code", None),
        "message": getattr(exc, "message", None) or str(exc),
        "code": body.get("code") if isinstance(body, dict) else None,
    }


def one(client, request):
    kwargs = {"model": request.get("model", "llmos"), "messages": request["messages"]}
    if "max_tokens" in request:
        kwargs["max_tokens"] = request["max_tokens"]
    try:
        if not request.get("stream"):
            completion = client.chat.completions.create(**kwargs)
            choice = completion.choices[0]
            return {"id": completion.id, "model": completion.model, "content": choice.message.content,
                    "role": choice.message.role, "finish_reason": choice.finish_reason,
                    "usage": completion.usage.model_dump() if completion.usage else None,
                    "llmos": (completion.model_extra or {}).get("llmos")}
        stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
        content, finish, usage, chunks, events, llmos, ident = [], None, None, 0, [], None, None
        for chunk in stream:
            chunks += 1
            ident = chunk.id
            extra = (chunk.model_extra or {}).get("llmos")
            if extra and extra.get("event"):
                events.append(extra)
            elif extra:
                llmos = extra
            if chunk.usage:
                usage = chunk.usage.model_dump()
            for choice in chunk.choices:
                if choice.delta.content:
                    content.append(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
        return {"id": ident, "content": "".join(content), "finish_reason": finish, "usage": usage,
                "chunks": chunks, "tool_events": events, "llmos": llmos}
    except openai.APIError as exc:
        return {"error": error_report(exc)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()
    scenario = json.load(sys.stdin)
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=120)
    report = {"openai_version": version("openai")}
    try:
        report["models"] = [model.id for model in client.models.list()]
    except openai.APIError as exc:
        report["models_error"] = error_report(exc)
    report["results"] = [one(client, request) for request in scenario.get("requests", [])]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
