{#- Every non-null `column_name` is a `field` of `to`, in the same project. -#}
{% test belongs_to(model, column_name, to, field) %}

select child.{{ column_name }}
from {{ model }} as child
left join {{ to }} as parent
    on parent.{{ field }} = child.{{ column_name }} {{ same_project('parent', 'child') }}
where child.{{ column_name }} is not null and parent.{{ field }} is null

{% endtest %}
