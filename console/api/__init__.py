"""The JSON API's plumbing, shared by every app's router (API.md's Conventions).

`errors` (the error shape and how exceptions become it), `parsing` (JSON, form or multipart
bodies; the field types that accept both), `auth` (token authentication). The API itself is
assembled from the apps' routers in `console.api.site`.
"""
