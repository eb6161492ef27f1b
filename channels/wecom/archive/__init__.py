"""会话内容存档 (message archive): read every salesperson↔customer chat, never write."""
