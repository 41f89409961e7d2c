"""Skills: SKILL.md folders the agent can use, found in the repository and the user's home."""
