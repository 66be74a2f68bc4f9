"""Web front ends over the one Assistant: the Gradio chat, the HTTP API and the OpenAI-
compatible endpoint, served together by assistant.web.server."""
