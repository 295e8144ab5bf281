"""To-dos: a corp's to-dos with executors and participants (actions, queries), and the to-dos of approval tasks."""
