"""The agent: a LangGraph StateGraph (router -> think -> act -> observe -> approval/respond).
LangGraph is used here and nowhere else."""
