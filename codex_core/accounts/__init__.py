"""Account state: who the server acts as towards the model provider."""
