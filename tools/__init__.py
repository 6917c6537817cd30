"""Tools the agent may call, behind JSON-Schema validation, a permission policy and an audit log.

Entry points: :func:`tools.factory.build_tool_executor` (the composition root) and
:meth:`tools.executor.ToolExecutor.call` (every call, from the agent or the CLI).
"""
