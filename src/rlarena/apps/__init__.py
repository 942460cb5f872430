"""Apps people use in a browser (Gradio). Each imports gradio inside the function that builds the page,
so `import rlarena` and the session logic stay free of it."""
